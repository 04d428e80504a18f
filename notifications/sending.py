"""Sending push batches: one task per provider batch, retries with backoff, dead
registrations removed, deliveries marked sent (so a redelivered task never repeats one).

A delivery the push service accepted is marked sent in the cache (Redis in production)
before the database: when the database fails just after the provider accepted (a
restart, a failover), the task fails and is run again, and the cache's mark keeps that
run from pushing it a second time. Only losing both at the same instant repeats a push.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from . import providers
from .models import PushDelivery, PushRegistration
from .registrations import usable_registrations
from .runner import enqueue
from .task_payloads import SendBatch, SendItem

# The logger operators filter on (docs/operations.md) stays the one from before the split.
logger = logging.getLogger("notifications.services")


def send_in_batches(items: Sequence[tuple[PushRegistration, int | None, dict[str, Any]]]) -> None:
    by_kind: dict[str, list[SendItem]] = defaultdict(list)
    for registration, delivery_id, payload in items:
        by_kind[registration.kind].append(SendItem(registration.pk, delivery_id, payload))
    for kind, batch_items in by_kind.items():
        size = providers.batch_size(kind)
        for start in range(0, len(batch_items), size):
            enqueue(SendBatch(kind, tuple(batch_items[start : start + size]), attempt=1))


def retry_delay(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter; the push service's Retry-After wins when longer."""
    backoff = settings.PUSH_RETRY_BASE_SECONDS * (2 ** (attempt - 1))
    backoff *= 1 + secrets.randbelow(250) / 1000  # up to +25%: retries do not stampede
    delay = max(backoff, retry_after or 0.0)
    return float(min(delay, max(settings.PUSH_RETRY_MAX_SECONDS, retry_after or 0.0)))


def send_batch(batch: SendBatch) -> dict[str, int]:
    """Send one provider batch. Marks deliveries sent, removes dead registrations, and
    queues the retryable rest again with a countdown. Returns counts per outcome."""
    kind, items = batch.kind, batch.items
    registrations = {
        r.pk: r
        for r in usable_registrations().filter(pk__in={i.registration_id for i in items}, kind=kind)
    }
    delivery_ids = {i.delivery_id for i in items if i.delivery_id is not None}
    already_sent = set(
        PushDelivery.objects.filter(pk__in=delivery_ids, sent_at__isnull=False).values_list(
            "pk", flat=True
        )
    )
    if sent_unmarked := _remembered_sent(delivery_ids - already_sent):
        # Accepted by the push service in an earlier run whose database write failed.
        PushDelivery.objects.filter(pk__in=sent_unmarked).update(sent_at=timezone.now())
        already_sent |= sent_unmarked
    todo = [
        (registrations[i.registration_id], i.delivery_id, i.payload)
        for i in items
        if i.registration_id in registrations and i.delivery_id not in already_sent
    ]
    counts = {outcome.value: 0 for outcome in providers.Outcome}
    if not todo:
        return counts
    results = providers.send(kind, [(registration, payload) for registration, _, payload in todo])
    for result in results:
        counts[result.outcome.value] += 1
    _apply_results(kind, todo, results, attempt=batch.attempt)
    return counts


def _apply_results(
    kind: str,
    todo: Sequence[tuple[PushRegistration, int | None, dict[str, Any]]],
    results: Sequence[providers.Result],
    *,
    attempt: int,
) -> None:
    sent: list[int] = []
    gone = Q(pk__in=[])
    retry: list[SendItem] = []
    retry_after: float | None = None
    for (registration, delivery_id, payload), result in zip(todo, results, strict=True):
        if result.outcome is providers.Outcome.SENT and delivery_id is not None:
            sent.append(delivery_id)
        elif result.outcome is providers.Outcome.GONE:
            # Only if the address is still the one that failed: the device may have
            # registered a new one meanwhile.
            gone |= Q(pk=registration.pk, address_hash=registration.address_hash)
            logger.info("push: registration %s is gone (%s)", registration.pk, result.detail)
        elif result.outcome is providers.Outcome.UNREACHABLE and attempt > 1:
            logger.warning(
                "push: registration %s unreachable, dropped: %s", registration.pk, result.detail
            )
        elif result.outcome in (providers.Outcome.RETRY, providers.Outcome.UNREACHABLE):
            retry.append(SendItem(registration.pk, delivery_id, payload))
            if result.retry_after is not None:
                retry_after = max(retry_after or 0.0, result.retry_after)
        elif result.outcome is providers.Outcome.FAILED:
            logger.warning(
                "push: %s push to registration %s refused: %s",
                kind,
                registration.pk,
                result.detail,
            )
    if sent:
        _remember_sent(sent)
        PushDelivery.objects.filter(pk__in=sent).update(sent_at=timezone.now())
    PushRegistration.objects.filter(gone).delete()
    if not retry:
        return
    if attempt >= settings.PUSH_MAX_ATTEMPTS:
        logger.warning("push: %d %s pushes dropped after %d attempts", len(retry), kind, attempt)
        return
    delay = retry_delay(attempt, retry_after)
    logger.info("push: %d %s pushes retried in %.1f s", len(retry), kind, delay)
    enqueue(SendBatch(kind, tuple(retry), attempt=attempt + 1), countdown=delay)


def _sent_key(delivery_id: int) -> str:
    return f"push:sent:{delivery_id}"


def _remember_sent(delivery_ids: Sequence[int]) -> None:
    try:
        cache.set_many(
            {_sent_key(delivery_id): 1 for delivery_id in delivery_ids},
            timeout=settings.PUSH_DELIVERY_RETENTION_HOURS * 3600,
        )
    except RedisError:  # the database's mark, written next, is the one that must hold
        logger.warning("push: could not note %d sent pushes in the cache", len(delivery_ids))


def _remembered_sent(delivery_ids: set[int]) -> set[int]:
    if not delivery_ids:
        return set()
    keys = {_sent_key(delivery_id): delivery_id for delivery_id in delivery_ids}
    try:
        found = cache.get_many(list(keys))
    except RedisError:  # without the cache only the database's marks count
        logger.warning("push: could not read sent pushes from the cache")
        return set()
    return {keys[key] for key in found}


def prune_deliveries() -> int:
    """Forget delivery claims old enough that no retry can still be running for them (a
    periodic task: ``CELERY_BEAT_SCHEDULE``)."""
    cutoff = timezone.now() - timedelta(hours=settings.PUSH_DELIVERY_RETENTION_HOURS)
    deleted, _ = PushDelivery.objects.filter(created_at__lt=cutoff).delete()
    return deleted
