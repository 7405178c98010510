"""The peers' workload: survey ``answer`` events to NPS, counted per channel and minute.

Every contender (``benchmarks.peers``) reads the same topic: ``events`` answers to
question ``nps`` (score 0-10) from ``customers`` customers on ``channels``
channels, each with a new ``response_id`` and ``event_id``, keyed by
``customer_id`` and partitioned by a stable hash of it. Event time advances at
``density`` events per second (the ``i``-th answer is due at
``START_MS + i / density``) and each answer's ``ts`` is drawn up to ``jitter_ms``
either side of that, so records arrive out of order by up to twice that within a
partition, always within cxpulse's default 120 s lateness.

After the answers come the closing heartbeats: on every partition one per
channel, ``CLOSING_TS`` far past the last answer, so every window of every
contender becomes final (a windowing engine that closes windows per key needs
one per key). They count nowhere.

The independent count is made here while generating, from the drawn scores alone.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from benchmarks.workloads import START_MS, Record

MINUTE_MS = 60_000
CHANNELS = ("web", "app", "email", "phone")
EVENTS = 200_000
CUSTOMERS = 5_000
JITTER_MS = 30_000
#: where the closing heartbeats are, in event time: a day after the start of any run
CLOSING_DELAY_MS = 30 * 86_400_000

#: (channel, minute) -> (promoters, passives, detractors)
MinuteCounts = dict[tuple[str, int], tuple[int, int, int]]


def category(score: int) -> int:
    """0 promoter (9-10), 1 passive (7-8), 2 detractor (0-6)."""
    return 0 if score >= 9 else 1 if score >= 7 else 2


@dataclass
class AnswerWorkload:
    """The records to produce (answers, then closing heartbeats) and their counts."""

    records: list[Record]
    answers: int
    density: float
    span_s: float
    channels: int
    counts: MinuteCounts = field(default_factory=dict)


def build(
    events: int = EVENTS,
    density: float = 28.0,
    *,
    partitions: int = 4,
    channels: int = len(CHANNELS),
    customers: int = CUSTOMERS,
    jitter_ms: int = JITTER_MS,
    seed: int = 19,
) -> AnswerWorkload:
    """Generate the workload; ``density`` in answers per second of event time."""
    if not density > 0:
        raise ValueError(f"density must be > 0, not {density}")
    if not 0 < channels <= len(CHANNELS):
        raise ValueError(f"channels must be 1..{len(CHANNELS)}, not {channels}")
    rng = random.Random(seed)
    names = CHANNELS[:channels]
    acc: dict[tuple[str, int], list[int]] = {}
    records: list[Record] = []
    step_ms = 1000.0 / density
    lo = hi = START_MS
    for i in range(events):
        ts = START_MS + int(i * step_ms) + rng.randint(-jitter_ms, jitter_ms)
        customer = f"c{rng.randrange(customers):05d}"
        channel = rng.choice(names)
        score = rng.randint(0, 10)
        event = {
            "event_id": f"a{i:08d}",
            "type": "answer",
            "ts": ts,
            "survey_id": "s-nps",
            "response_id": f"r{i:08d}",
            "customer_id": customer,
            "channel": channel,
            "question": "nps",
            "score": score,
        }
        key = customer.encode()
        records.append(Record("survey", zlib.crc32(key) % partitions, key, orjson.dumps(event)))
        acc.setdefault((channel, ts // MINUTE_MS), [0, 0, 0])[category(score)] += 1
        lo, hi = min(lo, ts), max(hi, ts)
    closing = hi + CLOSING_DELAY_MS
    for p in range(partitions):
        for channel in names:
            beat = {"type": "heartbeat", "ts": closing, "channel": channel}
            records.append(Record("survey", p, channel.encode(), orjson.dumps(beat)))
    counts = {k: (v[0], v[1], v[2]) for k, v in acc.items()}
    return AnswerWorkload(records, events, density, max(hi - lo, 1) / 1000, channels, counts)


def window_counts(
    minutes: Mapping[tuple[str, int], tuple[int, int, int]], size_min: int
) -> dict[tuple[str, int], tuple[int, int, int]]:
    """Counts per ``(channel, window end ms)`` of a sliding ``size_min``-minute window, 1 m step.

    A window ending at ``E`` covers minutes ``E/1m - size_min .. E/1m - 1``; only
    windows holding at least one answer are listed (as cxpulse publishes them).
    """
    out: dict[tuple[str, int], list[int]] = {}
    for (channel, minute), c in minutes.items():
        for k in range(1, size_min + 1):
            acc = out.setdefault((channel, (minute + k) * MINUTE_MS), [0, 0, 0])
            for i in range(3):
                acc[i] += c[i]
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def rows_to_counts(rows: Iterable[Iterable[object]]) -> MinuteCounts:
    """A peer's ``[[channel, minute, p, pa, d], ...]`` as counts; repeated keys add up."""
    out: dict[tuple[str, int], list[int]] = {}
    for row in rows:
        channel, minute, *cats = row
        acc = out.setdefault((str(channel), int(minute)), [0, 0, 0])  # type: ignore[call-overload]
        for i in range(3):
            acc[i] += int(cats[i])  # type: ignore[call-overload]
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}
