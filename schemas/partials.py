"""The internal partials topic: what source partitions tell the merge stage.

Two kinds of record, compact JSON (``k`` says which):

* buckets (``"b"``): one segment's changed bucket aggregates of one source
  partition, ``[[grid, start, counts], ...]``, keyed ``"{family}|{segment}"`` so
  a segment's partials always reach the same merge partition;
* status (``"s"``): a source partition's progress (version = its offset, the
  largest ``ts`` seen, the wall clock of its last arrival, its ack), sent to
  every merge partition, since each merges all source partitions.

``v`` (the source partition's offset when it sent) makes re-sends after a
crash idempotent: the merge stage ignores anything older than what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cxpulse.schemas.encoding import dumps_kept


@dataclass(frozen=True, slots=True)
class Buckets:
    """A segment's bucket aggregates from one source partition."""

    family: str
    partition: int
    version: int
    segment: str
    buckets: list[Any]


@dataclass(frozen=True, slots=True)
class Status:
    """A source partition's progress."""

    family: str
    partition: int
    version: int
    max_ts: int | None
    last_arrival_wall_ms: int
    ack: Any


def buckets_key(family: str, segment: str) -> bytes:
    return f"{family}|{segment}".encode()


def encode_buckets(
    family: str, partition: int, version: int, segment: str, buckets: list[Any]
) -> bytes:
    return dumps_kept(
        {"k": "b", "f": family, "p": partition, "v": version, "seg": segment, "b": buckets}
    )


def encode_status(s: Status) -> bytes:
    return dumps_kept(
        {
            "k": "s",
            "f": s.family,
            "p": s.partition,
            "v": s.version,
            "mx": s.max_ts,
            "la": s.last_arrival_wall_ms,
            "a": s.ack,
        }
    )


def decode(value: bytes) -> Buckets | Status:
    msg = orjson.loads(value)
    if msg["k"] == "b":
        return Buckets(msg["f"], msg["p"], msg["v"], msg["seg"], msg["b"])
    return Status(msg["f"], msg["p"], msg["v"], msg["mx"], msg["la"], msg.get("a"))
