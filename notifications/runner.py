"""Running push tasks: through the broker, or embedded (eager Celery) in this process on a
small thread pool, off the request path, so a push never delays the send that caused it."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import close_old_connections

if TYPE_CHECKING:
    from celery import Task

# The logger operators filter on (docs/operations.md) stays the one from before the split.
logger = logging.getLogger("notifications.services")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_in_flight = 0
_idle = threading.Condition(_executor_lock)


def enqueue(task: Task[Any, Any], args: list[Any], *, countdown: float = 0.0) -> None:
    """Queue ``task`` with JSON ``args``. With a broker: ``apply_async``. Embedded (eager
    Celery): run it in this process on a small thread pool, so a push never delays the
    send that caused it; a countdown waits on a timer thread."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task.apply_async(args=tuple(args), countdown=countdown)
        return
    global _in_flight  # noqa: PLW0603 (counted for wait_for_idle)
    with _executor_lock:
        _in_flight += 1
    if countdown > 0:
        timer = threading.Timer(countdown, _submit_local, (task, args))
        timer.daemon = True
        timer.start()
    else:
        _submit_local(task, args)


def _submit_local(task: Task[Any, Any], args: list[Any]) -> None:
    global _executor  # noqa: PLW0603 (created on first use)
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="push")
        executor = _executor
    executor.submit(_run_local, task, args)


def _run_local(task: Task[Any, Any], args: list[Any]) -> None:
    global _in_flight  # noqa: PLW0603
    try:
        task.apply(args=tuple(args), throw=True)
    except Exception:
        logger.exception("push: task %s failed", task.name)
    finally:
        close_old_connections()
        with _executor_lock:
            _in_flight -= 1
            _idle.notify_all()


def wait_for_idle(timeout: float = 10.0) -> bool:
    """Embedded: block until no in-process push task is queued or running (tests)."""
    with _executor_lock:
        return _idle.wait_for(lambda: _in_flight == 0, timeout=timeout)
