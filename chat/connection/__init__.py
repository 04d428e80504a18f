"""A WebSocket connection of a device, as a few parts (see device.py for the list);
``consumer.ChatConsumer`` is the ASGI application that chat/routing.py serves."""
