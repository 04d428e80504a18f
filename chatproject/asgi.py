"""ASGI entry point: HTTP goes to Django, WebSocket to the chat consumer.

Run with ``uvicorn chatproject.asgi:application --ws websockets-sansio`` (the default of
``manage.py serve``) or ``daphne chatproject.asgi:application``.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from chat.registry.announcer import start_announcing  # noqa: E402
from chat.routing import websocket_application  # noqa: E402
from chatproject.startup_heap import freeze_startup_heap  # noqa: E402

# A server process advertising a URL (CHAT_SERVER_WS_URL) registers itself (chat/registry/).
start_announcing()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application,
    }
)

# Last: everything imported so far lives as long as the process (chatproject/startup_heap.py).
freeze_startup_heap()
