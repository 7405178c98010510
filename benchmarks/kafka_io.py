"""Kafka I/O of the benchmark: producing the workload, the raw ceiling, the closing, the finals.

The ceiling is what a Python consumer can do at best on this machine: a plain
aiokafka consumer (no group, no commits) that decodes every record with orjson
and updates a dict — per-channel, per-minute NPS counts for survey answers, and
per-type, per-channel, per-minute counts for everything else. It reads the same
topics and the same records as the workers, so their ratio to it is fair.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from benchmarks.expected import WINDOW, WINDOW_END_MS
from benchmarks.workloads import DAY0, PARTITIONS, Record
from cxpulse.agents.tools.replay import Outgoing
from cxpulse.agents.tools.replay import produce as produce_outgoing
from cxpulse.schemas.timestamps import parse_ts

#: the closing heartbeat: ten days past the verified window's end, so it is final everywhere
CLOSING_TS = DAY0 + 40 * 86_400_000


async def produce(
    bootstrap: str,
    topic: str,
    records: list[tuple[int, bytes, bytes]],
) -> None:
    """Produce ``(partition, key, value)`` records to one topic (``benchmarks.open_carts``)."""
    await produce_records(
        bootstrap, {"t": topic}, [Record("t", p, key, value) for p, key, value in records]
    )


async def produce_records(
    bootstrap: str, topics: Mapping[str, str], records: Iterable[Record]
) -> int:
    """Produce records as fast as the producer goes (big batches); returns how many."""
    return await produce_outgoing(
        bootstrap,
        (Outgoing(topics[r.family], r.key, r.value, r.partition) for r in records),
        window=20_000,
        linger_ms=20,
        acks=1,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
    )


async def close_windows(bootstrap: str, topics: Iterable[str]) -> None:
    """A heartbeat far in event time on every partition: every window becomes final."""
    value = orjson.dumps({"type": "heartbeat", "ts": CLOSING_TS})
    records = [Record(t, p, b"", value) for t in topics for p in range(PARTITIONS)]
    await produce_records(bootstrap, {t: t for t in topics}, records)


def _tally(value: bytes, nps: dict[tuple[str, int], list[int]], other: dict[Any, int]) -> None:
    ev = orjson.loads(value)
    minute = ev["ts"] // 60_000
    if ev.get("type") == "answer" and ev.get("question") == "nps":
        acc = nps.setdefault((ev["channel"], minute), [0, 0, 0])
        s = ev["score"]
        acc[0 if s >= 9 else 1 if s >= 7 else 2] += 1
    else:
        key = (ev["type"], ev.get("channel"), minute)
        other[key] = other.get(key, 0) + 1


async def ceiling(bootstrap: str, topics: Sequence[str], n: int) -> dict[str, float]:
    """Read ``n`` records of ``topics`` from the beginning; events/s and CPU µs per event.

    Timed from the first fetched records to the last one tallied, as a worker's window
    opens at its first count (``benchmarks.throughput``) and the peers' raw loop starts
    its clock (``benchmarks/peers/peerlib.py``): the consumer's start, its metadata and
    the wait for the first fetch are not the loop's speed.

    The bench's process holds the whole workload (every record produced and the
    expected counts): the objects that exist before the loop are frozen out of the
    cyclic collector's reach (``gc.freeze``), or each of its collections would
    traverse them, a cost a minimal loop in a process of its own does not pay. With
    them traversed, the ceiling took 5.5-7.7 µs of CPU per survey event at 1,000
    events per second of event time and a worker came out above it in half the
    rounds; frozen, 3.2-3.8 µs, as the peers' raw loop (``cxpulse bench --workers 1
    --events 200000 --paced-events 0 --repeat 3``).
    """
    gc.freeze()
    try:
        return await _ceiling(bootstrap, topics, n)
    finally:
        gc.unfreeze()


async def _ceiling(bootstrap: str, topics: Sequence[str], n: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        nps: dict[tuple[str, int], list[int]] = {}
        other: dict[Any, int] = {}
        seen = 0
        cpu0 = t0 = 0.0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            if batch and not seen:
                cpu0, t0 = time.process_time(), time.perf_counter()
            for records in batch.values():
                for r in records:
                    _tally(r.value, nps, other)
                seen += len(records)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await consumer.stop()
    return {
        "events_per_s": seen / elapsed,
        "cpu_us_per_event": cpu / seen * 1e6,
        "measured_s": elapsed,
    }


def is_checked_final(rec: Mapping[str, Any]) -> bool:
    """Whether a KPI record is a final of the verified window (``WINDOW``, ``all``)."""
    return bool(
        rec.get("final")
        and rec.get("window") == WINDOW
        and rec.get("segment") == "all"
        and parse_ts(rec.get("window_end")) == WINDOW_END_MS
    )


async def read_finals(
    bootstrap: str, kpi_topic: str, metrics: Iterable[str], timeout_s: float = 600.0
) -> dict[str, dict[str, Any]]:
    """The final records to verify, read from the KPI topic until all are in (or time is up)."""
    wanted = set(metrics)
    found: dict[str, dict[str, Any]] = {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(kpi_topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout_s
        while not wanted <= set(found) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for records in batch.values():
                for r in records:
                    rec = orjson.loads(r.value)
                    if rec.get("metric") in wanted and is_checked_final(rec):
                        found[rec["metric"]] = rec
    finally:
        await consumer.stop()
    return found
