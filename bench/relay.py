"""The calibration relay: the chat protocol's hot path in plain asyncio + uvloop + websockets.

No Django, no database: a device authenticates with ``Bearer <user id>``, gets ``hello``,
``sync`` returns the user's recent events from memory, ``send`` numbers the event in every
member's stream and writes it to their sockets, ``ping`` gets ``pong``. It is what a
Python server could at best do on this machine, so every chat figure is reported beside
it and as a ratio to it (the machine is shared and noisy; the ratio drifts less).

Run: ``python -m bench.relay --port 18100``. The benchmark tells it the conversations'
members with one ``bench.conversations`` frame (``{"<id>": [user ids]}``) before a workload.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict, deque
from typing import Any

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve

RETAINED_EVENTS = 2_000


class Relay:
    def __init__(self) -> None:
        self.conversations: dict[int, list[int]] = {}
        self.sockets: defaultdict[int, set[ServerConnection]] = defaultdict(set)
        self.last_seq: defaultdict[int, int] = defaultdict(int)
        self.events: defaultdict[int, deque[tuple[int, bytes]]] = defaultdict(
            lambda: deque(maxlen=RETAINED_EVENTS)
        )
        self.next_message_id = 1
        # Presence: direct-conversation partners see each other's transitions.
        self.partners: defaultdict[int, set[int]] = defaultdict(set)
        self.watchers: set[ServerConnection] = set()

    def _append(self, user_id: int, frame: bytes) -> tuple[int, bytes]:
        seq = self.last_seq[user_id] + 1
        self.last_seq[user_id] = seq
        # Splice the seq in front of the shared frame, as the chat server's hub does.
        data = b'{"seq":%d,' % seq + frame[1:]
        self.events[user_id].append((seq, data))
        return seq, data

    async def handle(self, ws: ServerConnection) -> None:
        auth = (ws.request.headers.get("Authorization", "") if ws.request else "").split()
        user_id = int(auth[-1]) if auth and auth[-1].isdigit() else 0
        await ws.send(orjson.dumps({"type": "hello", "user_id": user_id}).decode())
        self.sockets[user_id].add(ws)
        if len(self.sockets[user_id]) == 1:
            self._transition(user_id, "online")
        try:
            async for raw in ws:
                frame: dict[str, Any] = orjson.loads(raw)
                kind = frame.get("type")
                if kind == "send":
                    self._send(ws, user_id, frame)
                elif kind == "sync":
                    after = frame.get("after") or 0
                    events = [data for seq, data in self.events[user_id] if seq > after]
                    page = b'{"type":"sync.page","events":[%b],"last_seq":%d,"has_more":false}' % (
                        b",".join(events),
                        self.last_seq[user_id],
                    )
                    await ws.send(page.decode())
                elif kind == "bench.conversations":
                    for key, members in frame["conversations"].items():
                        self.conversations[int(key)] = list(members)
                        if len(members) == 2:
                            self.partners[members[0]].add(members[1])
                            self.partners[members[1]].add(members[0])
                    await ws.send(orjson.dumps({"type": "ok"}).decode())
                elif kind == "watch":
                    self.watchers.add(ws)
                    users = [
                        {"user_id": p, "status": "online" if self.sockets.get(p) else "offline"}
                        for p in self.partners.get(user_id, ())
                    ]
                    await ws.send(
                        orjson.dumps({"type": "presence.snapshot", "users": users}).decode()
                    )
                elif kind == "ping":
                    await ws.send(orjson.dumps({"type": "pong", "ref": frame.get("ref")}).decode())
        finally:
            self.sockets[user_id].discard(ws)
            self.watchers.discard(ws)
            if not self.sockets[user_id]:
                self._transition(user_id, "offline")

    def _transition(self, user_id: int, status: str) -> None:
        event = orjson.dumps(
            {
                "type": "presence",
                "user_id": user_id,
                "status": status,
                "last_active_at": time.time(),
            }
        ).decode()
        for partner in self.partners.get(user_id, ()):
            watching = [s for s in self.sockets.get(partner, ()) if s in self.watchers]
            broadcast(watching, event)

    def _send(self, ws: ServerConnection, user_id: int, frame: dict[str, Any]) -> None:
        message_id = self.next_message_id
        self.next_message_id += 1
        conversation_id = frame["conversation_id"]
        message = {
            "id": message_id,
            "conversation_id": conversation_id,
            "sender_id": user_id,
            "client_msg_id": frame["client_msg_id"],
            "text": frame["text"],
            "created_at": time.time(),
        }
        shared = orjson.dumps({"type": "message.new", "message": message})
        sender_seq = 0
        for member in self.conversations.get(conversation_id, ()):
            seq, data = self._append(member, shared)
            if member == user_id:
                sender_seq = seq
                continue
            text = data.decode()
            for socket in self.sockets.get(member, ()):
                broadcast([socket], text)
        sent = {
            "seq": sender_seq,
            "type": "sent",
            "ref": frame.get("ref"),
            "client_msg_id": frame["client_msg_id"],
            "message_id": message_id,
            "duplicate": False,
        }
        broadcast([ws], orjson.dumps(sent).decode())


async def _main(port: int) -> None:
    relay = Relay()
    async with serve(relay.handle, "127.0.0.1", port, compression=None, max_size=1_048_576):
        await asyncio.Future()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(_main(args.port))


if __name__ == "__main__":
    main()
