"""``GET /api/v1/chat-servers/best``: the WebSocket URL a client should connect to."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import best_server, get_registry


class ChatServerSerializer(serializers.Serializer[Any]):
    ws_url = serializers.CharField(help_text="Open the WebSocket here.")
    server_id = serializers.CharField(
        allow_null=True, help_text="The chosen process; null: no process is registered."
    )
    zone = serializers.CharField(help_text="The process's zone (empty if none configured).")


def suggested_server(request: Request) -> dict[str, Any]:
    """The best live server for this request's zone, or else this request's own origin
    (``/ws/`` on the host the client reached: the load balancer)."""
    zone = request.headers.get(settings.CHAT_ZONE_HEADER, "")
    chosen = best_server(get_registry().live(now=time.time()), zone)
    if chosen is None:
        scheme = "wss" if request.is_secure() else "ws"
        return {"ws_url": f"{scheme}://{request.get_host()}/ws/", "server_id": None, "zone": ""}
    return {"ws_url": chosen.ws_url, "server_id": chosen.server_id, "zone": chosen.zone}


class BestChatServerView(APIView):
    @extend_schema(responses={200: ChatServerSerializer})
    def get(self, request: Request) -> Response:
        """The chat server to open the WebSocket on.

        The least loaded live process that is not draining, in the client's zone first
        (the load balancer's zone header). A client that cannot reach it connects to
        `/ws/` on the load balancer instead."""
        return Response(suggested_server(request))
