"""Bounded state over a long run: a real worker replays days of mixed traffic, day by day.

Run: ``.venv/bin/python -m benchmarks.long_run [days] [--scale S] [--out FILE]``.

Starts the embedded broker and one worker; produces survey answers, cart journeys
and ticket lives (with heartbeats every 10 minutes of event time on every
partition) one day of event time at a time, waits until the worker's watermarks
have passed the day, then samples ``cx_state_entries`` (per input topic: entities,
buckets, dedup ids; the merge stage's buckets) and the worker's RSS. With the
SPEC's defaults the dedup ids roll after the 24 h horizon, open carts after the
7-day recovery window, buckets after the largest window on each step grid (7 days
for ``7d/1h``; ``30d/1d`` keeps at most 30 daily buckets per segment), so the
curve flattens once the longest of them has passed. The integration test runs it
with short windows and recovery so that happens within a week.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from benchmarks.kafka_io import produce_records
from benchmarks.workers import Worker, topic_names, wait_stable, worker_env
from benchmarks.workloads import Record
from cxpulse.agents.tools.broker import EmbeddedBroker
from cxpulse.agents.tools.traffic import CartTraffic, SurveyTraffic, TicketTraffic

DAY = 86_400_000
HEARTBEAT_EVERY = 600_000
TOPIC_KEYS = {
    "CXPULSE_TOPICS_SURVEY": "customer_id",
    "CXPULSE_TOPICS_CART": "cart_id",
    "CXPULSE_TOPICS_TICKET": "ticket_id",
}

Encoded = tuple[int, bytes | None, bytes]


def traffic(t0: int, days: int, scale: float, seed: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Every event of ``days`` days from ``t0``, per topic env key, in event-time order.

    At scale 1: a survey invitation every 20 s, a cart journey every minute and a
    ticket every 5 minutes (~12k survey, ~7k cart and ~2k ticket events a day).
    """
    surveys, carts, tickets = SurveyTraffic(seed), CartTraffic(seed), TicketTraffic(seed)
    out: dict[str, list[dict[str, Any]]] = {key: [] for key in TOPIC_KEYS}
    end = t0 + days * DAY
    for every, key, make in (
        (20_000, "CXPULSE_TOPICS_SURVEY", lambda ts: list(surveys.events_at(ts))),
        (60_000, "CXPULSE_TOPICS_CART", carts.journey),
        (300_000, "CXPULSE_TOPICS_TICKET", tickets.lifecycle),
    ):
        step = max(int(every / scale), 1)
        for ts in range(t0, end, step):
            out[key].extend(ev for ev in make(ts) if ev["ts"] < end)
        out[key].sort(key=lambda ev: ev["ts"])
    return out


def day_records(
    events: Mapping[str, list[dict[str, Any]]], start: int, partitions: int
) -> dict[str, list[Encoded]]:
    """The records of the day from ``start``, partitioned by key, with heartbeats."""
    out: dict[str, list[Encoded]] = {}
    for key, evs in events.items():
        field = TOPIC_KEYS[key]
        records: list[Encoded] = []
        beat = start
        for ev in (e for e in evs if start <= e["ts"] < start + DAY):
            while ev["ts"] >= beat:
                records.extend(_heartbeats(beat, partitions))
                beat += HEARTBEAT_EVERY
            k = ev[field].encode()
            records.append((zlib.crc32(k) % partitions, k, orjson.dumps(ev)))
        while beat < start + DAY:
            records.extend(_heartbeats(beat, partitions))
            beat += HEARTBEAT_EVERY
        out[key] = records
    return out


def _heartbeats(ts: int, partitions: int) -> Iterator[Encoded]:
    value = orjson.dumps({"type": "heartbeat", "ts": ts})
    return ((p, None, value) for p in range(partitions))


def run(
    broker: EmbeddedBroker,
    env: dict[str, str],
    days: int,
    scale: float,
    log: Path,
) -> list[dict[str, Any]]:
    """Replay ``days`` days through one worker; one sample of its state per day."""
    partitions = int(env.get("CXPULSE_TOPICS_PARTITIONS", "4"))
    t0 = (int(time.time() * 1000) // DAY - days - 1) * DAY  # days ending yesterday
    events = traffic(t0, days, scale)
    worker = Worker(env, log).start()
    samples: list[dict[str, Any]] = []
    try:
        wait_stable([worker])
        for day in range(days):
            start = t0 + day * DAY
            records = day_records(events, start, partitions)
            asyncio.run(
                produce_records(
                    broker.bootstrap,
                    {key: env[key] for key in records},
                    [Record(key, p, k, v) for key, recs in records.items() for p, k, v in recs],
                )
            )
            _wait_watermarks(worker, env, start + DAY - HEARTBEAT_EVERY)
            time.sleep(2.5)  # the next health tick refreshes cx_state_entries
            state = {
                f"{dict(labels)['part']}:{dict(labels)['kind']}": int(value)
                for (name, labels), value in worker.samples().items()
                if name == "cx_state_entries"
            }
            produced = sum(len(r) for r in records.values())
            rss = _rss_mb(worker)
            samples.append({"day": day + 1, "records": produced, "rss_mb": rss, **state})
        return samples
    finally:
        worker.stop()


def _wait_watermarks(worker: Worker, env: Mapping[str, str], at_least_ms: int) -> None:
    lateness = 120_000
    topics = [env[key] for key in TOPIC_KEYS]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        marks = {
            dict(labels)["topic"]: value
            for (name, labels), value in worker.samples().items()
            if name == "cx_watermark_timestamp_seconds"
        }
        if all(marks.get(t, 0) * 1000 >= at_least_ms - lateness for t in topics):
            return
        time.sleep(0.5)
    raise AssertionError(f"watermarks did not pass {at_least_ms}")


def _rss_mb(worker: Worker) -> float:
    for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("days", type=int, nargs="?", default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", default="benchmarks/long_run.json")
    args = parser.parse_args(argv)
    with EmbeddedBroker() as broker:
        tag = f"long{int(time.time())}"
        env = {**worker_env(tag, broker.url, topic_names(tag)), "CXPULSE_EMIT_INTERVAL": "1s"}
        samples = run(broker, env, args.days, args.scale, Path("/tmp/cxpulse-long-run.log"))
    keys = list(samples[0])
    print("  ".join(f"{k:>16}" for k in keys))
    for s in samples:
        print("  ".join(f"{s.get(k, 0):>16}" for k in keys))
    Path(args.out).write_bytes(orjson.dumps(samples, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
