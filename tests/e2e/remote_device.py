"""A device for another network namespace: ``python -m tests.e2e.remote_device WS_URL TOKEN``.

It connects, prints ``ready`` once the server said ``hello``, then heartbeats (a ``ping``
frame every 0.5 s) and reads until it is killed. Tests run it under ``ip netns exec`` on a
host they can cut off the network (tests/e2e/netns.py).
"""

from __future__ import annotations

import asyncio
import sys

import orjson
import websockets


async def run(ws_url: str, token: str) -> None:
    async with websockets.connect(
        ws_url, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None
    ) as socket:
        hello = orjson.loads(await socket.recv())
        assert hello["type"] == "hello", hello
        sys.stdout.write("ready\n")
        sys.stdout.flush()

        async def heartbeat() -> None:
            while True:
                await socket.send('{"type":"ping"}')
                await asyncio.sleep(0.5)

        beating = asyncio.create_task(heartbeat())
        try:
            async for _ in socket:
                pass
        finally:
            beating.cancel()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2]))
