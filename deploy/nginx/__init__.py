"""nginx in front of the chat server processes: chat.conf and its renderer."""
