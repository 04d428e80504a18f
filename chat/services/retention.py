"""Retention of sync queues: entries older than ``SYNC_RETENTION_DAYS`` are deleted.

Messages are history and kept forever; a sync queue only tells devices what changed since
their cursor, and a device away longer than the window reloads its conversations and
history over REST instead (the ``reset`` sync page, chat.services.sync). Pruning runs as a
periodic task (``CELERY_BEAT_SCHEDULE``: celery beat in production, a timer of the serving
process embedded), in bounded batches so that each delete is a short transaction.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from chat.store import get_message_store

logger = logging.getLogger(__name__)

PRUNE_BATCH = 5_000
# A run stops after this many batches and the next run continues: a backlog (retention
# shortened, the task stopped for days) is worked off without one run lasting hours.
MAX_BATCHES_PER_RUN = 200


def prune_sync_queues(*, days: float | None = None) -> int:
    """Delete the entries older than ``days`` (default ``SYNC_RETENTION_DAYS``); returns
    how many."""
    window = settings.SYNC_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=window)
    store = get_message_store()
    total = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        deleted = store.prune_sync(older_than=cutoff, limit=PRUNE_BATCH)
        total += deleted
        if deleted < PRUNE_BATCH:
            break
    if total:
        logger.info("retention: pruned %d sync entries older than %s", total, cutoff)
    return total
