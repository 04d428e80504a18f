"""Chat's periodic tasks (``CELERY_BEAT_SCHEDULE``), found by Celery's autodiscovery."""

from __future__ import annotations

from celery import shared_task

from chat.services import retention


@shared_task(name="chat.prune_sync_queues")
def prune_sync_queues() -> int:
    """Sync queue retention (chat.services.retention)."""
    return retention.prune_sync_queues()
