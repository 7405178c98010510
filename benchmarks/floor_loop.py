"""The least per-event state work of the peers' answer workload, as one plain loop.

What any exactly-once NPS count per channel and minute must do per answer, and
nothing more: the dedup test and registration of its ``event_id``, the memory of
its ``response_id`` (a response counts once, as cxpulse's ``response_rate`` needs), its
segment labels (``all`` and
``channel=…``), its category added to each label's minute, and its place in the
wake index that forgets the response after the horizon. No validation, no
lateness, no persistence, no outputs: a lower bound for cxpulse's engine, not a
replacement (``benchmarks.floor`` measures it).

The same source runs as Python and, compiled by Cython with the types of
``floor_loop.pxd``, as C: the two figures bound what compiling the per-event path
can save.
"""

from __future__ import annotations

from typing import Any

MINUTE_MS = 60_000
#: a response packed as one int, as cxpulse holds the usual one (ts << 18 | bits)
TS_SHIFT = 18


def count_answers(
    batches: list[list[Any]], horizon_ms: int
) -> tuple[dict[tuple[int, str], list[int]], int]:
    """Counts ``[promoters, passives, detractors, responses]`` per ``(minute start,
    label)`` of the answers in ``batches`` (decoded events, per partition in order),
    and the number of answers kept (first copies)."""
    seen: dict[str, int] = {}  # event_id -> batch that registered it
    responses: dict[str, int] = {}  # response_id -> packed first answer
    wake: dict[int, list[str]] = {}  # minute -> responses to forget then
    counts: dict[tuple[int, str], list[int]] = {}
    label_tuples: dict[str, tuple[str, str]] = {}
    kept = 0
    seq = 0
    for events in batches:
        seq += 1
        pending: dict[str, int] = {}  # the batch's ids, as a chunk to persist
        changed: dict[str, bool] = {}  # the batch's responses, as a chunk to persist
        for ev in events:
            event_id = ev.event_id
            if event_id in seen:
                continue
            ts = ev.ts
            seen[event_id] = seq
            pending[event_id] = ts
            channel = ev.channel
            labels = label_tuples.get(channel)
            if labels is None:
                labels = label_tuples[channel] = ("all", "channel=" + channel)
            kept += 1
            key = ev.response_id
            new = responses.get(key) is None  # a response counts once, each answer always
            score = ev.score
            slot = 0 if score >= 9 else 1 if score >= 7 else 2
            start = ts - ts % MINUTE_MS
            for label in labels:
                acc = counts.get((start, label))
                if acc is None:
                    acc = counts[(start, label)] = [0, 0, 0, 0]
                acc[slot] += 1
                if new:
                    acc[3] += 1
            if not new:
                continue
            changed.setdefault(key, False)
            responses[key] = ts << TS_SHIFT | 1
            at = ts + horizon_ms
            step = at - at % MINUTE_MS
            keys = wake.get(step)
            if keys is None:
                keys = wake[step] = []
            keys.append(key)
    return counts, kept
