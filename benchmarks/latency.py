"""Latency from an event's produce time to its effect on ``/metrics``, at half the sustained rate.

How it is measured. After the throughput phase, the workload's paced tail is
produced at 50 % of the events/s the workers just sustained (all of its topics
interleaved, in event-time order). Every ``marker_interval_s`` (10 ms), one
*marker* per topic goes with it: an exact copy of the last record sent to that
topic's partition 0. A copy is a duplicate (SPEC §1): it changes no KPI, but
``cx_events_total{topic, outcome="duplicate"}`` counts it as soon as the batch
holding it has been processed — state written, changelog and partials records
flushed — since the source agent updates the counter right after that. Markers
go to partition 0 only, which one agent processes in order, so the counter
reaching ``base + k`` means marker ``k`` is done; a marker shares its batch with
ordinary events, so its latency is theirs.

Meanwhile ``/metrics`` of every worker is scraped in rounds, one every
``poll_s`` (100 ms), restricted to ``cx_events_total`` (``EVENTS_PATH``) so a
scrape's cost does not grow with the KPI series (a full one cost a worker ~15 ms
of CPU with the mixed workload's ~760 series). Marker ``k``, first counted
in round ``r``, took effect after round ``r − 1`` started (or after it was
produced, if later) and before round ``r``'s answers were back: its latency is
the midpoint of that interval minus its produce time, and the interval's width
is the resolution (reported as median and maximum; half of it is the error
bound). Produce time is taken just before ``producer.send`` (linger 0), on the
same monotonic clock as the scrapes, in the same process.

What it does not include: the KPI gauges (``cx_nps_score``…) are refreshed from
the open windows every emit interval (10 s by default), so an event reaches
them up to that much later; this is the processing latency under that.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from benchmarks.workers import EVENTS_PATH, parse_event_counts
from benchmarks.workloads import Record

#: The largest share of the paced rate that markers may take (see ``_send_paced``).
MARKER_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class Round:
    """One scrape of every worker: when it started and ended, and the duplicates per topic."""

    start: float
    end: float
    duplicates: Mapping[str, float]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def marker_latencies(
    produced: Sequence[float], rounds: Sequence[tuple[float, float, float]]
) -> list[tuple[float, float]]:
    """``(latency, resolution)`` in seconds of each marker seen, in produce order.

    ``produced``: the markers' produce times, in order. ``rounds``: ``(start,
    end, count)`` of each scrape round, the first taken before any marker; a
    marker is seen in the first round whose count exceeds the first round's by
    its (1-based) number.
    """
    if not rounds:
        return []
    base = rounds[0][2]
    out: list[tuple[float, float]] = []
    j = 0
    for k in range(1, len(rounds)):
        seen = rounds[k][2] - base
        while j < len(produced) and j < seen:
            p = produced[j]
            hi = rounds[k][1]
            lo = min(max(rounds[k - 1][0], p), hi)
            out.append(((lo + hi) / 2 - p, hi - lo))
            j += 1
    return out


def summarize(
    latencies: Sequence[tuple[float, float]],
    markers: int,
    produced_at: Sequence[float] | None = None,
) -> dict[str, Any]:
    """p50/p99/max in ms and the resolution; figures are ``None`` if a marker was not seen.

    With ``produced_at`` (each marker's produce time), ``trend_ms`` compares the p50
    of the first and the last tenth of the markers: a last tenth much slower than
    the first means the workers fell behind the paced stream (latency grew with
    the queue) rather than kept up with it.
    """
    complete = bool(latencies) and len(latencies) == markers
    values = [lat for lat, _ in latencies]
    widths = [w for _, w in latencies]

    def ms(x: float) -> float:
        return round(x * 1000, 2)

    trend = None
    if complete and produced_at is not None and len(values) >= 10:
        ordered = [lat for _, lat in sorted(zip(produced_at, values, strict=True))]
        tenth = len(ordered) // 10
        trend = {
            "first_tenth_p50": ms(percentile(ordered[:tenth], 0.5)),
            "last_tenth_p50": ms(percentile(ordered[-tenth:], 0.5)),
        }
    return {
        "markers": markers,
        "seen": len(latencies),
        "p50_ms": ms(percentile(values, 0.5)) if complete else None,
        "p99_ms": ms(percentile(values, 0.99)) if complete else None,
        "max_ms": ms(max(values)) if complete else None,
        "resolution_ms": {
            "median": ms(percentile(widths, 0.5)) if widths else None,
            "max": ms(max(widths)) if widths else None,
        },
        "trend_ms": trend,
    }


class _Scraper:
    """Rounds of ``/metrics`` scrapes of every worker, as often as ``poll_s`` allows."""

    def __init__(self, urls: Sequence[str], poll_s: float) -> None:
        self.urls = list(urls)
        self.poll_s = poll_s
        self.rounds: list[Round] = []
        #: markers sent per topic; ``all_seen`` is set once a round has counted them all
        self.expected: dict[str, int] = {}
        self.all_seen = asyncio.Event()
        self._stop = asyncio.Event()

    async def round(self, session: aiohttp.ClientSession) -> None:
        start = time.monotonic()
        try:
            texts = await asyncio.gather(*(self._get(session, u) for u in self.urls))
        except (aiohttp.ClientError, TimeoutError):
            return  # a lost round only widens the next one's interval
        end = time.monotonic()
        duplicates: dict[str, float] = {}
        for text in texts:
            for (topic, outcome), value in parse_event_counts(text).items():
                if outcome == "duplicate":
                    duplicates[topic] = duplicates.get(topic, 0.0) + value
        self.rounds.append(Round(start, end, duplicates))
        if self.expected and all(self.seen(t) >= n for t, n in self.expected.items()):
            self.all_seen.set()

    @staticmethod
    async def _get(session: aiohttp.ClientSession, url: str) -> str:
        async with session.get(f"{url}{EVENTS_PATH}") as r:
            return await r.text()

    async def run(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            await self.round(session)
            await asyncio.sleep(max(0.0, self.poll_s - (time.monotonic() - began)))

    def stop(self) -> None:
        self._stop.set()

    def seen(self, topic: str) -> float:
        if not self.rounds:
            return 0.0
        return self.rounds[-1].duplicates.get(topic, 0.0) - self.rounds[0].duplicates.get(
            topic, 0.0
        )


async def paced_phase(
    bootstrap: str,
    topics: Mapping[str, str],
    records: Sequence[Record],
    rate: float,
    urls: Sequence[str],
    *,
    marker_interval_s: float = 0.01,
    poll_s: float = 0.1,
    drain_timeout_s: float = 60.0,
) -> dict[str, Any]:
    """Produce ``records`` at ``rate`` events/s with markers; the latency summary."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    scraper = _Scraper(urls, poll_s)
    produced: dict[str, list[float]] = {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await scraper.round(session)  # the baseline, before any marker
        await producer.start()
        task = asyncio.create_task(scraper.run(session))
        try:
            t0 = time.monotonic()
            sent, markers = await _send_paced(
                producer, topics, records, rate, marker_interval_s, produced
            )
            await producer.flush()
            elapsed = time.monotonic() - t0
            scraper.expected = {topics[f]: len(times) for f, times in produced.items()}
            with contextlib.suppress(TimeoutError):  # the summary reports what was not seen
                await asyncio.wait_for(scraper.all_seen.wait(), drain_timeout_s)
        finally:
            scraper.stop()
            await task
            await producer.stop()
    latencies: list[tuple[float, float]] = []
    produced_at: list[float] = []
    for family, times in produced.items():
        topic = topics[family]
        rounds = [(r.start, r.end, r.duplicates.get(topic, 0.0)) for r in scraper.rounds]
        seen = marker_latencies(times, rounds)
        latencies.extend(seen)
        produced_at.extend(times[: len(seen)])
    summary = summarize(latencies, markers, produced_at)
    summary.update(
        target_rate_per_s=round(rate, 1),
        achieved_rate_per_s=round((sent + markers) / elapsed, 1) if elapsed > 0 else None,
        events=sent,
        scrape_rounds=len(scraper.rounds),
    )
    return summary


async def _send_paced(
    producer: AIOKafkaProducer,
    topics: Mapping[str, str],
    records: Sequence[Record],
    rate: float,
    marker_interval_s: float,
    produced: dict[str, list[float]],
) -> tuple[int, int]:
    """The paced stream itself; markers count toward the rate. Returns (events, markers).

    Markers take at most ``MARKER_SHARE`` of the rate: their interval grows when
    the rate is low. At a fixed 10 ms, three topics' markers are 300 records/s, and
    a rate below that (a tiny backlog's 2-worker rate is a few hundred events/s)
    would never let an event go out: the bench would send markers forever.
    """
    last_p0: dict[str, Record] = {}
    families = len({rec.family for rec in records}) or 1
    marker_interval_s = max(marker_interval_s, families / (MARKER_SHARE * rate))
    t0 = time.monotonic()
    next_marker = t0
    i = markers = 0
    while i < len(records):
        now = time.monotonic()
        due = min(len(records), int(rate * (now - t0)) - markers)
        while i < due:
            rec = records[i]
            await producer.send(topics[rec.family], rec.value, key=rec.key, partition=rec.partition)
            if rec.partition == 0:
                last_p0[rec.family] = rec
            i += 1
        if now >= next_marker:
            for family, rec in last_p0.items():
                produced.setdefault(family, []).append(time.monotonic())
                await producer.send(topics[family], rec.value, key=rec.key, partition=0)
                markers += 1
            next_marker = now + marker_interval_s
        await asyncio.sleep(0.002)
    return i, markers
