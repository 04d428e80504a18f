"""Hash-tagged Redis keys: which keys share a Redis Cluster slot.

A script (and a transaction) may only touch keys of one slot, and a cluster hashes a key
by its hash tag, the part between the first ``{`` and the next ``}``, when it has one.
Keys that scripts touch together therefore share a tag, and keys that are per user are
spread over a fixed number of **buckets**, ``user id % USER_BUCKETS``, each its own tag:
``{rt:10}:user:42`` is user 42's route set (bucket ``42 % 16 = 10``). An operation on
many users (a message's recipients, a tick's presence leases) is one script call per
bucket, all in one pipeline: one round trip on a single Redis, and on a cluster one per
master (in parallel), whatever the number of users. The tags are harmless on a single
Redis, so both configurations use the same keys.

The layout of every key is in docs/architecture.md ("Redis keys").
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

# Buckets per namespace: a constant, so that the calls of a fan-out are bounded by it; 16
# spread each namespace over every master of a small cluster (slots of distinct tags
# are unrelated) while keeping a fan-out to at most 16 script calls.
USER_BUCKETS = 16


def bucket_of(subject: int | str) -> int:
    """The bucket of a user id (or of any other subject of a per-subject key)."""
    if isinstance(subject, int):
        return subject % USER_BUCKETS
    return zlib.crc32(subject.encode()) % USER_BUCKETS


def tag(namespace: str, bucket: int) -> str:
    """The hash tag of ``namespace``'s keys in ``bucket``: ``{namespace:bucket}``."""
    return f"{{{namespace}:{bucket}}}"


def positions_by_bucket(subjects: Sequence[int | str]) -> dict[int, list[int]]:
    """The positions (indexes into ``subjects``) of each bucket's subjects, in order."""
    groups: dict[int, list[int]] = {}
    for position, subject in enumerate(subjects):
        groups.setdefault(bucket_of(subject), []).append(position)
    return groups
