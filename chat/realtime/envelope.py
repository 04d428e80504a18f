"""The envelope a published event travels in, between processes and inside one.

An envelope is ``<header JSON>\\n<frame JSON>``. The header lists the recipient user ids,
their per-user sequence numbers (or nothing, for ephemeral events) and optionally a
device that must not get the frame (the sender's device, which gets an ack instead). The
frame is serialized once by the publisher; a receiving process splices each recipient's
``seq`` into it as bytes, without parsing or re-encoding it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Envelope:
    user_ids: list[int]
    seqs: list[int] | None
    skip_device_id: int | None
    close_device_ids: list[int] | None
    frame: bytes

    def frame_for(self, index: int) -> tuple[int | None, bytes]:
        """(seq, frame bytes) for the recipient at ``index`` of ``user_ids``."""
        if self.seqs is None:
            return None, self.frame
        seq = self.seqs[index]
        return seq, b'{"seq":%d,%s' % (seq, self.frame[1:])


def encode(
    user_ids: Sequence[int],
    frame: Mapping[str, Any] | bytes,
    *,
    seqs: Mapping[int, int] | None = None,
    skip_device_id: int | None = None,
    close_device_ids: Sequence[int] | None = None,
) -> bytes:
    header: dict[str, Any] = {"u": list(user_ids)}
    if seqs is not None:
        header["s"] = [seqs[user_id] for user_id in user_ids]
    if skip_device_id is not None:
        header["d"] = skip_device_id
    if close_device_ids:
        header["c"] = list(close_device_ids)
    body = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    return orjson.dumps(header) + b"\n" + body


def decode(data: bytes) -> Envelope:
    header_bytes, _, frame = data.partition(b"\n")
    header = orjson.loads(header_bytes)
    return Envelope(
        user_ids=header["u"],
        seqs=header.get("s"),
        skip_device_id=header.get("d"),
        close_device_ids=header.get("c"),
        frame=frame,
    )
