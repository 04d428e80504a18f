"""This process's lifecycle: whether it is draining, and what draining runs.

A server process that gets SIGTERM (``manage.py serve``) drains before it exits: it marks
itself draining here, stops listening, then runs the registered drain steps (chat closes
its WebSocket connections with "reconnect elsewhere") and exits once they are done or
``DRAIN_TIMEOUT`` has passed. The parts that must know read the flag:

* ``/readyz`` answers 503 ``draining`` (chatproject/health.py), so a load balancer or an
  orchestrator stops sending new clients;
* the chat server registry republishes the record at once with ``draining`` set, so
  ``GET /api/v1/chat-servers/best`` stops naming the process;
* ``hello`` carries ``draining: true`` for a client that still got in.

The apps register their parts (``on_draining``, ``add_drain_step``) in ``ready()``: this
module sits below them and imports none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

DrainStep = Callable[[], Awaitable[None]]

_draining = threading.Event()
_lock = threading.Lock()
_on_draining: list[Callable[[], None]] = []
_on_serving: list[Callable[[], None]] = []
_drain_steps: list[DrainStep] = []


def on_serving(callback: Callable[[], None]) -> None:
    """Call ``callback`` when this process starts serving (``manage.py serve``), not in
    other commands or tests: e.g. the embedded stand-in for celery beat."""
    with _lock:
        if callback not in _on_serving:
            _on_serving.append(callback)


def mark_serving() -> None:
    """This process is about to serve clients: run the ``on_serving`` callbacks."""
    for callback in tuple(_on_serving):
        try:
            callback()
        except Exception:
            logger.exception("serve: an on_serving callback failed")


def is_draining() -> bool:
    return _draining.is_set()


def on_draining(callback: Callable[[], None]) -> None:
    """Call ``callback`` (cheap, non-blocking: it runs in the event loop's thread) when
    the process starts draining. Registering the same callback twice keeps one."""
    with _lock:
        if callback not in _on_draining:
            _on_draining.append(callback)


def add_drain_step(step: DrainStep) -> None:
    """Await ``step`` while draining, after the process stopped accepting connections.
    Registering the same step twice keeps one."""
    with _lock:
        if step not in _drain_steps:
            _drain_steps.append(step)


def mark_draining() -> None:
    """From now on this process is draining (idempotent)."""
    if _draining.is_set():
        return
    _draining.set()
    for callback in tuple(_on_draining):
        try:
            callback()
        except Exception:
            logger.exception("drain: an on_draining callback failed")


async def run_drain_steps() -> None:
    """Run the drain steps concurrently (the caller bounds the wait: ``DRAIN_TIMEOUT``);
    a failing step is logged and does not stop the others."""
    results = await asyncio.gather(
        *(step() for step in tuple(_drain_steps)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            logger.error("drain: a step failed", exc_info=result)


def reset_for_tests() -> None:
    """Not draining again (tests that drain in-process)."""
    _draining.clear()
