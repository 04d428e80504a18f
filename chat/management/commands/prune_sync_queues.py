"""``manage.py prune_sync_queues``: delete sync queue entries outside the retained window now.

What the periodic task ``chat.prune_sync_queues`` does every ``SYNC_PRUNE_INTERVAL_SECONDS``,
run by hand: after shortening ``SYNC_RETENTION_DAYS``, or with ``--days`` for one run.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from chat.services import retention


class Command(BaseCommand):
    help = "Delete sync queue entries older than SYNC_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=float, default=None, help="This run's window instead of the setting."
        )

    def handle(self, *args: Any, days: float | None, **options: Any) -> None:
        pruned = retention.prune_sync_queues(days=days)
        self.stdout.write(f"pruned {pruned} sync entries")
