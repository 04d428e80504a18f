"""The second calibration target: the Django Channels tutorial's chat, on the benchmark's frames.

The tutorial's design (https://channels.readthedocs.io/en/latest/tutorial/): an
``AsyncWebsocketConsumer`` joins a channel-layer group and ``group_send``s each message to
it, under uvicorn, with ``channels_redis.pubsub.RedisPubSubChannelLayer``. Adapted only to
speak ``bench/relay.py``'s frames: a socket authenticates with ``Bearer <user id>`` and
joins the group ``user_<id>``; a ``send`` is one ``group_send`` per member (the sender's
``sent`` travels in its own group's copy, as the tutorial echoes to the sender); ``watch``
subscribes to direct-conversation partners' ``presence``. Per-user ``seq`` numbers, the
events ``sync`` answers with, members and socket counts live in process memory: one
process only. Nothing is persisted; Redis carries only pub/sub, which no database number
scopes, so the layer's prefix names the port. A sync racing live sends may repeat an event.

Run: ``python -m bench.channels_tutorial --port 18191 --redis-url redis://127.0.0.1:6379/10``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import defaultdict, deque
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import URLPattern

RETAINED_EVENTS = 2_000
# channels_redis#422 (as in chatproject/redis_settings.py): with redis-py 8 a socket
# timeout cuts the layer's reads off under load, and a pool stops at 100 connections.
LAYER_MAX_CONNECTIONS = 1000

# No HTTP views: every request gets 404, all the benchmark's readiness probe needs.
urlpatterns: list[URLPattern] = []


class Memory:
    """What this one process knows: who is in which conversation, and every user's stream."""

    def __init__(self) -> None:
        self.conversations: dict[int, list[int]] = {}
        self.partners: defaultdict[int, set[int]] = defaultdict(set)
        self.sockets: defaultdict[int, int] = defaultdict(int)
        self.last_seq: defaultdict[int, int] = defaultdict(int)
        self.events: defaultdict[int, deque[tuple[int, str]]] = defaultdict(
            lambda: deque(maxlen=RETAINED_EVENTS)
        )
        self.message_ids = itertools.count(1)

    def append(self, user_id: int, message: dict[str, Any]) -> tuple[int, str]:
        self.last_seq[user_id] += 1
        seq = self.last_seq[user_id]
        text = json.dumps({"seq": seq, "type": "message.new", "message": message})
        self.events[user_id].append((seq, text))
        return seq, text


MEMORY = Memory()


class ChatConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        token = dict(self.scope["headers"]).get(b"authorization", b"").decode().split()
        self.user_id = int(token[-1]) if token and token[-1].isdigit() else 0
        self.group_name = f"user_{self.user_id}"
        self.watching = False
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send_frame({"type": "hello", "user_id": self.user_id})
        MEMORY.sockets[self.user_id] += 1
        if MEMORY.sockets[self.user_id] == 1:
            await self._announce("online")

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
        MEMORY.sockets[self.user_id] -= 1
        if MEMORY.sockets[self.user_id] == 0:
            await self._announce("offline")

    async def receive(self, text_data: str = "{}", bytes_data: bytes | None = None) -> None:
        frame: dict[str, Any] = json.loads(text_data)
        kind = frame.get("type")
        if kind == "send":
            await self._send_message(frame)
        elif kind == "sync":
            after = frame.get("after") or 0
            events = [text for seq, text in MEMORY.events[self.user_id] if seq > after]
            last_seq = MEMORY.last_seq[self.user_id]
            await self.send(
                text_data=f'{{"type":"sync.page","events":[{",".join(events)}],'
                f'"last_seq":{last_seq},"has_more":false}}'
            )
        elif kind == "ping":
            await self.send_frame({"type": "pong", "ref": frame.get("ref")})
        elif kind == "watch":
            self.watching = True
            users = [
                {"user_id": p, "status": "online" if MEMORY.sockets[p] else "offline"}
                for p in MEMORY.partners[self.user_id]
            ]
            await self.send_frame({"type": "presence.snapshot", "users": users})
        elif kind == "bench.conversations":
            for key, members in frame["conversations"].items():
                MEMORY.conversations[int(key)] = members
                if len(members) == 2:
                    MEMORY.partners[members[0]].add(members[1])
                    MEMORY.partners[members[1]].add(members[0])
            await self.send_frame({"type": "ok"})

    async def _send_message(self, frame: dict[str, Any]) -> None:
        message_id = next(MEMORY.message_ids)
        message = {key: frame[key] for key in ("conversation_id", "client_msg_id", "text")}
        message |= {"id": message_id, "sender_id": self.user_id, "created_at": time.time()}
        for member in MEMORY.conversations.get(frame["conversation_id"], ()):
            # Numbered right before its publish: the layer publishes in call order, so
            # every member's stream arrives in seq order.
            seq, text = MEMORY.append(member, message)
            event = {"type": "chat.message", "text": text, "origin": self.channel_name}
            if member == self.user_id:
                # The sender's own stream, "sent" included, also goes through the layer: sent
                # straight to the socket it could overtake an earlier seq still in Redis.
                sent = {"seq": seq, "type": "sent", "ref": frame.get("ref"), "duplicate": False}
                sent |= {"client_msg_id": frame["client_msg_id"], "message_id": message_id}
                event["sent"] = json.dumps(sent)
            await self.channel_layer.group_send(f"user_{member}", event)

    async def chat_message(self, event: dict[str, Any]) -> None:
        # The sending socket gets its copy as "sent", the sender's other devices as the rest.
        own = event["origin"] == self.channel_name
        await self.send(text_data=event["sent"] if own else event["text"])

    async def _announce(self, status: str) -> None:
        presence = {"type": "presence", "user_id": self.user_id, "status": status}
        text = json.dumps({**presence, "last_active_at": time.time()})
        for partner in MEMORY.partners[self.user_id]:
            event = {"type": "presence.event", "text": text}
            await self.channel_layer.group_send(f"user_{partner}", event)

    async def presence_event(self, event: dict[str, Any]) -> None:
        if self.watching:
            await self.send(text_data=event["text"])

    async def send_frame(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content))


def application(*, port: int, redis_url: str) -> Any:
    import django
    from django.conf import settings

    host = {"address": redis_url, "socket_timeout": None, "max_connections": LAYER_MAX_CONNECTIONS}
    layer = {"hosts": [host], "prefix": f"bench_tutorial_{port}_"}
    settings.configure(
        SECRET_KEY="bench-channels-tutorial-" + "x" * 40,
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={
            "default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": layer}
        },
    )
    django.setup()
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.asgi import get_asgi_application
    from django.urls import path

    websocket = URLRouter([path("ws/", ChatConsumer.as_asgi())])
    return ProtocolTypeRouter({"http": get_asgi_application(), "websocket": websocket})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    import uvicorn

    from chatproject.management.commands.serve import UVICORN_OPTIONS

    # The chat server's uvicorn options: the two differ by the application only.
    uvicorn.run(
        application(port=args.port, redis_url=args.redis_url),
        host="127.0.0.1",
        port=args.port,
        **UVICORN_OPTIONS,
    )


if __name__ == "__main__":
    main()
