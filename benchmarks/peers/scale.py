"""``python -m benchmarks.peers.scale``: 1, 2, 4… cxpulse workers on one answer topic.

How a deployment scales across processes: for each worker count, a fresh topic
of ``--partitions`` partitions (default 8, so 4 workers still own 2 each) gets the
same answer workload (``benchmarks.peers.workload``), and that many workers of one
consumer group drain it together. Events/s over their union and CPU µs/event
summed over them, as ``cxpulse bench`` measures them (``benchmarks.throughput``);
every run is verified on its final per-channel records (``benchmarks.peers.run``).
On a machine with fewer cores than workers the workers share cores, so the
figure that carries over to a bigger machine is the CPU µs/event (the cost of
the work, which more workers should not raise much), not the events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks import report as bench_report
from benchmarks.kafka_io import produce_records
from benchmarks.peers.report import CONTENDERS
from benchmarks.peers.run import CXPULSE, run_cxpulse
from benchmarks.peers.workload import EVENTS, build
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return format(value, spec)
    return "-"


def table(doc: dict[str, Any]) -> str:
    """A row per worker count, with the speed-up over one worker."""
    s = doc["settings"]
    lines = [
        f"{s['contender']}, {s['events']:,} answers at {s['density']:g}/s of event time, "
        f"{s['partitions']} partitions, {doc['machine']['cpus']} CPUs",
        f"{'workers':>8}{'events/s':>10}{'×1 worker':>11}{'CPU µs/ev':>11}"
        f"{'peak RSS MB (each)':>22}  verified",
    ]
    base = next((r.get("events_per_s") for r in doc["runs"] if r.get("workers") == 1), None)
    for r in doc["runs"]:
        rate = r.get("events_per_s")
        rss = " / ".join(_fmt(x, ".0f") for x in r.get("peak_rss_by_worker_mb") or []) or "-"
        lines.append(
            f"{r['workers']:>8}{_fmt(rate, ',.0f'):>10}"
            f"{_fmt(rate / base if rate and base else None, '.2f'):>11}"
            f"{_fmt(r.get('cpu_us_per_event'), '.1f'):>11}{rss:>22}"
            f"  {'yes' if r.get('status') == 'ok' else 'NO ' + str(r.get('reason'))}"
        )
    return "\n".join(lines)


def main(
    worker_counts: Sequence[int] = (1, 2, 4),
    *,
    events: int = EVENTS,
    density: float = 28.0,
    partitions: int = 8,
    contender: str = "cxpulse-default",
    out: str = "benchmarks/results-scale.json",
) -> int:
    """Every worker count in turn; 0 only if every run was verified."""
    workload = build(events, density, partitions=partitions)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="cxpulse-scale-") as tmp,
        EmbeddedBroker(log_path=str(Path(tmp) / "tansu.log")) as broker,
    ):
        for count in worker_counts:
            print(f"scale: {count} worker(s) on {partitions} partitions…", flush=True)
            topic = f"scale-answers-{uuid.uuid4().hex[:8]}"
            asyncio.run(ensure_topics(broker.bootstrap, {topic: partitions}))
            asyncio.run(produce_records(broker.bootstrap, {"survey": topic}, workload.records))
            run = run_cxpulse(
                contender, broker, topic, workload, Path(tmp), count=count, partitions=partitions
            )
            runs.append(run)
            if run["status"] != "ok":
                print(f"scale: {count} worker(s) failed: {run.get('reason')}")
                for line in run.get("log_tail") or []:
                    print(f"  | {line}")
    doc = {
        "schema_version": 1,
        "verified": all(r["status"] == "ok" for r in runs),
        "machine": bench_report.machine(),
        "settings": {
            "contender": contender,
            "events": events,
            "density": density,
            "partitions": partitions,
            "worker_counts": list(worker_counts),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "runs": runs,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(table(doc))
    print(f"written: {out}")
    return 0 if doc["verified"] else 1


def _counts(text: str) -> tuple[int, ...]:
    counts = tuple(int(x) for x in text.split(","))
    if not counts or min(counts) < 1:
        raise ValueError(text)
    return counts


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m benchmarks.peers.scale", description=__doc__)
    p.add_argument("--workers", type=_counts, default=(1, 2, 4), help="e.g. 1,2,4")
    p.add_argument("--events", type=int, default=EVENTS)
    p.add_argument("--density", type=float, default=28.0, help="answers per s of event time")
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument(
        "--contender", choices=[c for c in CONTENDERS if c in CXPULSE], default="cxpulse-default"
    )
    p.add_argument("--out", default="benchmarks/results-scale.json")
    a = p.parse_args()
    sys.exit(
        main(
            a.workers,
            events=a.events,
            density=a.density,
            partitions=a.partitions,
            contender=a.contender,
            out=a.out,
        )
    )
