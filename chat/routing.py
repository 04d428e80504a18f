"""WebSocket URL routing."""

from typing import Any, cast

from django.urls import path

from .connection.consumer import ChatConsumer

websocket_urlpatterns = [
    # Channels' URLRouter takes ASGI applications through path(), typed for views.
    path("ws/", cast(Any, ChatConsumer.as_asgi())),
]
