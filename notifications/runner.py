"""Running push tasks: through the broker, or embedded (eager Celery) in this process on a
small thread pool, off the request path, so a push never delays the send that caused it.

Tasks are reached by name (``TaskPayload.task_name``), never by importing
:mod:`notifications.tasks`: the tasks call the decision and sending code, which enqueue
tasks in turn, and imports go one way (tasks -> decision -> sending -> runner).

Periodic tasks (``CELERY_BEAT_SCHEDULE``) run under ``celery beat`` in production. Embedded
there is no beat: the first task this process runs starts one timer thread per schedule
entry, which runs it on the same thread pool (docs/operations.md).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import close_old_connections

from chatproject.celery import app

from .task_payloads import JSON, TaskPayload

# The logger operators filter on (docs/operations.md) stays the one from before the split.
logger = logging.getLogger("notifications.services")

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_in_flight = 0
_idle = threading.Condition(_executor_lock)
_schedule_timers: dict[str, threading.Thread] = {}
_schedule_changes = 0  # bumped when CELERY_BEAT_SCHEDULE changes (tests shorten intervals)
_schedule_changed = threading.Condition()


def enqueue(job: TaskPayload, *, countdown: float = 0.0) -> None:
    """Queue ``job``'s task with its JSON kwargs. With a broker: ``send_task``. Embedded
    (eager Celery): run it in this process on a small thread pool, so a push never delays
    the send that caused it; a countdown waits on a timer thread."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        app.send_task(job.task_name, kwargs=job.to_json(), countdown=countdown)
        return
    start_embedded_schedule()
    _count_in_flight()
    if countdown > 0:
        timer = threading.Timer(countdown, _submit_local, (job.task_name, job.to_json()))
        timer.daemon = True
        timer.start()
    else:
        _submit_local(job.task_name, job.to_json())


def _count_in_flight() -> None:
    global _in_flight  # noqa: PLW0603 (counted for wait_for_idle)
    with _executor_lock:
        _in_flight += 1


def _submit_local(task_name: str, kwargs: JSON) -> None:
    global _executor  # noqa: PLW0603 (created on first use)
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="push")
        executor = _executor
    executor.submit(_run_local, task_name, kwargs)


def _run_local(task_name: str, kwargs: JSON) -> None:
    global _in_flight  # noqa: PLW0603
    try:
        app.tasks[task_name].apply(kwargs=kwargs, throw=True)
    except Exception:
        logger.exception("push: task %s failed", task_name)
    finally:
        close_old_connections()
        with _executor_lock:
            _in_flight -= 1
            _idle.notify_all()


def wait_for_idle(timeout: float = 10.0) -> bool:
    """Embedded: block until no in-process push task is queued or running (tests)."""
    with _executor_lock:
        return _idle.wait_for(lambda: _in_flight == 0, timeout=timeout)


# --- the embedded stand-in for celery beat ----------------------------------------------------
def start_embedded_schedule_if_eager() -> None:
    """``start_embedded_schedule`` when tasks run in this process (no broker)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        start_embedded_schedule()


def start_embedded_schedule() -> None:
    """Embedded: run each ``CELERY_BEAT_SCHEDULE`` entry on a timer thread of this process
    (the first enqueue calls this; calling it again changes nothing)."""
    with _executor_lock:
        for entry_name in settings.CELERY_BEAT_SCHEDULE:
            if entry_name not in _schedule_timers:
                timer = threading.Thread(
                    target=_run_on_schedule,
                    args=(entry_name,),
                    name=f"beat-{entry_name}",
                    daemon=True,
                )
                _schedule_timers[entry_name] = timer
                timer.start()


def _interval(entry_name: str) -> float | None:
    entry = settings.CELERY_BEAT_SCHEDULE.get(entry_name)
    if entry is None:
        return None
    schedule = entry["schedule"]
    return schedule.total_seconds() if isinstance(schedule, timedelta) else float(schedule)


def _schedule_changed_within(seconds: float) -> bool:
    with _schedule_changed:
        seen = _schedule_changes
        return _schedule_changed.wait_for(lambda: _schedule_changes != seen, timeout=seconds)


def _run_on_schedule(entry_name: str) -> None:
    while (interval := _interval(entry_name)) is not None:
        if _schedule_changed_within(interval):
            continue  # a new schedule: wait its interval instead
        entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE[entry_name]
        _count_in_flight()
        _submit_local(entry["task"], dict(entry.get("kwargs", {})))
    with _executor_lock:
        del _schedule_timers[entry_name]


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _schedule_changes  # noqa: PLW0603
    if setting == "CELERY_BEAT_SCHEDULE":
        with _schedule_changed:
            _schedule_changes += 1
            _schedule_changed.notify_all()


setting_changed.connect(_on_setting_changed)
