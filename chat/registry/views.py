"""``GET /api/v1/chat-servers/best``: the WebSocket URL a client should connect to."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import get_registry

logger = logging.getLogger(__name__)


class ChatServerSerializer(serializers.Serializer[Any]):
    ws_url = serializers.CharField(help_text="Open the WebSocket here.")
    server_id = serializers.CharField(
        allow_null=True, help_text="The chosen process; null: no process is registered."
    )
    zone = serializers.CharField(help_text="The process's zone (empty if none configured).")


def suggested_server(request: HttpRequest) -> dict[str, Any]:
    """The best live server for this request's zone (claimed: the next client is steered
    by this one too), or else this request's own origin (``/ws/`` on the host the client
    reached: the load balancer). Also in the log-in and sign-up answers (chat/apps.py)."""
    zone = request.headers.get(settings.CHAT_ZONE_HEADER, "")
    try:
        chosen = get_registry().suggest(zone=zone, now=time.time())
    except Exception:
        logger.warning("registry: no suggestion, Redis unreachable", exc_info=True)
        chosen = None
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
