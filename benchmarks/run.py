"""``cxpulse bench``: cxpulse workers against the raw aiokafka ceiling, in one run.

For each workload (``survey``; ``mixed`` = surveys, carts and tickets, see
``benchmarks.workloads``), generated once with every default window and segment:

1. For 1 and then 2 worker processes (one consumer group, fresh topics each, so
   each starts from the same backlog and its closing heartbeats touch no other):
   produce the backlog, start the workers together and time the drain
   (``benchmarks.throughput``: events/s over the union of workers, CPU µs/event
   summed over them); then the latency phase at half that rate (``--paced-share``)
   (``benchmarks.latency``); then a closing heartbeat, and the workers' final
   records are checked against the independent counts (``benchmarks.expected``).
   Peak RSS is read per process before the workers stop.
2. After the 1-worker run, the ceiling: a plain aiokafka consumer reads as many
   records of the same topics (``benchmarks.kafka_io``).

With ``rounds`` (``cxpulse bench --repeat N``) all of it runs N times on fresh topics,
the workloads' order counterbalanced round by round (``benchmarks.rounds``), so that
a slow minute of a shared machine, or the run before, falls on every workload alike:
the table then adds each figure's median and range, and the mixed workload's rate
against survey's within each round (``benchmarks.report.summary``). Single runs
spread by up to ±30 % here, ratios taken within one round much less.

It writes the JSON result (``benchmarks.report``) and prints the table; it exits
1 if any verification failed or any figure is missing, so a fast wrong answer
fails. Everything started (broker, workers) is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks import report, throughput
from benchmarks.expected import WINDOW, WINDOW_END_MS, verify
from benchmarks.kafka_io import ceiling, close_windows, produce_records, read_finals
from benchmarks.latency import paced_phase
from benchmarks.rounds import round_order
from benchmarks.workers import Worker, peak_rss_mb, topic_names, wait_stable, worker_env
from benchmarks.workloads import (
    EVENT_TIME_RATE,
    FAMILIES,
    PARTITIONS,
    WORKLOADS,
    Workload,
    build,
)
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics
from cxpulse.streams.settings import Settings

#: events/s of the paced phase when the backlog drained too fast to measure a rate
FALLBACK_PACE = 1_000.0

__all__ = ["main"]


def run_workers(
    broker: EmbeddedBroker,
    workload: Workload,
    count: int,
    log_dir: Path,
    paced_share: float = 0.5,
) -> tuple[dict[str, Any], dict[str, str]]:
    """One configuration: ``count`` workers on fresh topics; its figures and its topics."""
    tag = f"{workload.name}{count}-{uuid.uuid4().hex[:6]}"
    topics = topic_names(tag)
    env = worker_env(tag, broker.url, topics)
    asyncio.run(ensure_topics(broker.bootstrap, {topics[f]: PARTITIONS for f in FAMILIES}))
    workers = [
        Worker(
            {**env, "CXPULSE_STORE_DATA_DIR": str(log_dir / f"{tag}-{i}")},
            log_dir / f"{tag}-{i}.log",
        )
        for i in range(count)
    ]
    began = time.perf_counter()
    asyncio.run(produce_records(broker.bootstrap, topics, workload.backlog))
    produce_s = time.perf_counter() - began
    try:
        for w in workers:
            w.start()
        figures = throughput.measure(workers, len(workload.backlog))
        figures["produce_s"] = round(produce_s, 2)
        wait_stable(workers)
        latency = None
        rate = figures["events_per_s"] * paced_share
        if not math.isfinite(rate) or rate <= 0:
            rate = FALLBACK_PACE  # a tiny backlog drained between two scrapes: no rate
        if workload.paced:
            latency = asyncio.run(
                paced_phase(
                    broker.bootstrap,
                    topics,
                    workload.paced,
                    rate,
                    [w.url for w in workers],
                )
            )
        asyncio.run(close_windows(broker.bootstrap, [topics[f] for f in FAMILIES]))
        expected = workload.counts.expected(workload.families)
        finals = asyncio.run(read_finals(broker.bootstrap, topics["kpi"], expected))
        by_worker = [sum(w.counts().values()) for w in workers]
        rss = [round(peak_rss_mb(w.pid), 1) for w in workers]
    except Exception:
        for w in workers:
            print(f"--- worker log {w.log_path}:\n{w.log_tail()}")
        raise
    finally:
        for w in workers:
            w.stop()
    run: dict[str, Any] = {"workers": count, **figures}
    run.update(
        peak_rss_mb=rss,
        events_by_worker=by_worker,
        latency=latency,
        verification={
            "record": {"window": WINDOW, "segment": "all", "window_end_ms": WINDOW_END_MS},
            **verify(expected, finals),
        },
    )
    return run, topics


def bench_workload(
    broker: EmbeddedBroker,
    workload: Workload,
    worker_counts: Sequence[int],
    log_dir: Path,
    paced_share: float = 0.5,
) -> dict[str, Any]:
    """Every configuration of one workload, and the ceiling on the same topics."""
    out: dict[str, Any] = {
        "events": len(workload.backlog),
        "paced_events": len(workload.paced),
        "events_by_topic": workload.by_family,
        "event_time_rate": workload.event_time_rate,
        "event_time_span_s": workload.event_time_span_s,
        "ceiling": None,
        "runs": [],
    }
    for count in worker_counts:
        print(f"bench: {workload.name}, {count} worker(s)…", flush=True)
        run, topics = run_workers(broker, workload, count, log_dir, paced_share)
        out["runs"].append(run)
        if out["ceiling"] is None:
            print(f"bench: {workload.name}, raw aiokafka ceiling…", flush=True)
            names = [topics[f] for f in workload.families]
            out["ceiling"] = asyncio.run(ceiling(broker.bootstrap, names, len(workload.backlog)))
    ceil = (out["ceiling"] or {}).get("events_per_s")
    for run in out["runs"]:
        run["ratio_to_ceiling"] = run["events_per_s"] / ceil if ceil else None
    return out


def add_round(results: dict[str, Any], name: str, number: int, workload: dict[str, Any]) -> None:
    """Fold one round's result of a workload into ``results``: its runs tagged with
    the round, its ceiling appended to ``ceilings`` (``ceiling`` stays the first)."""
    for run in workload["runs"]:
        run["round"] = number
    held = results.get(name)
    if held is None:
        results[name] = {**workload, "ceilings": [workload["ceiling"]]}
        return
    held["runs"].extend(workload["runs"])
    held["ceilings"].append(workload["ceiling"])


def main(
    events: int = 500_000,
    out: str = "benchmarks/results.json",
    *,
    paced_events: int | None = None,
    workloads: Sequence[str] = WORKLOADS,
    worker_counts: Sequence[int] = (1, 2),
    event_time_rate: float = EVENT_TIME_RATE,
    paced_share: float = 0.5,
    rounds: int = 1,
) -> int:
    """Run the benchmark; 0 only if every run is verified and every figure is there."""
    paced = events // 2 if paced_events is None else paced_events
    defaults = Settings()
    settings = {
        "events": events,
        "paced_events": paced,
        "partitions": PARTITIONS,
        "event_time_rate": event_time_rate,
        "paced_share": paced_share,
        "worker_counts": list(worker_counts),
        "windows": [w.label for w in defaults.windows],
        "segments": list(defaults.segments.dimensions),
        "emit_interval_s": defaults.emit_interval_ms / 1000,
        "verified_record": f"{WINDOW} all, window_end {WINDOW_END_MS}",
        "rounds": rounds,
    }
    started = time.monotonic()
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="cxpulse-bench-") as tmp,
        EmbeddedBroker(log_path=str(Path(tmp) / "tansu.log")) as broker,
    ):
        built: dict[str, Workload] = {}
        for number in range(1, rounds + 1):
            for name in round_order(workloads, number):
                workload = built.get(name)
                if workload is None:
                    print(
                        f"bench: generating the {name} workload ({events:,} + {paced:,} events,"
                        f" {event_time_rate:,g} events per second of event time)…"
                    )
                    workload = build(name, events, paced, event_time_rate=event_time_rate)
                    if rounds > 1:
                        built[name] = workload  # the same records every round
                if rounds > 1:
                    print(f"bench: round {number} of {rounds}", flush=True)
                got = bench_workload(broker, workload, worker_counts, Path(tmp), paced_share)
                add_round(results, name, number, got)
    settings["duration_s"] = round(time.monotonic() - started, 1)
    doc = report.result(settings, results)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(report.table(doc))
    for name, wl in results.items():
        for run in wl["runs"]:
            for problem in run["verification"]["problems"]:
                print(f"verification failed ({report.run_name(name, run)}): {problem}")
    print(f"written: {out}")
    return 0 if doc["verified"] and doc["complete"] else 1
