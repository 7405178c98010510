"""The source stage alone, no broker: ``python -m benchmarks.engine survey 200000 [--profile]``.

Runs the throughput backlog of ``benchmarks.workloads`` through
:meth:`agents.runtime.Runtime.process_source` in batches of 1,000 per partition
and prints the best CPU time per event of five runs (or, with ``--profile``, a
cProfile of one run). The worker benchmark (``cxpulse bench``) mixes this with
Kafka I/O, Faust and the merge stage and varies by ±15 % on this machine; an
engine change is measured here first, back to back against the commit before it.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from agents.runtime import Runtime
from benchmarks.workloads import build
from streams.settings import load_settings
from streams.transport import InputRecord, RawRecord

Batch = tuple[str, int, list[InputRecord]]


def batches(workload_name: str, events: int, size: int = 1_000) -> list[Batch]:
    """The backlog as the consumer would hand it over: per partition, in order."""
    parts: dict[tuple[str, int], list[InputRecord]] = {}
    for record in build(workload_name, events, 0).backlog:
        recs = parts.setdefault((record.family, record.partition), [])
        recs.append(RawRecord(len(recs), record.key, record.value, None))
    return [
        (family, partition, recs[i : i + size])
        for (family, partition), recs in parts.items()
        for i in range(0, len(recs), size)
    ]


def run_once(work: list[Batch]) -> float:
    """CPU seconds to process every batch with a fresh runtime (default settings)."""
    runtime = Runtime(load_settings(env={}), "partials")
    began = time.process_time()
    for family, partition, records in work:
        runtime.process_source(family, partition, records, {})
    return time.process_time() - began


def main(workload_name: str = "survey", events: int = 200_000, profile: bool = False) -> None:
    work = batches(workload_name, events)
    n = sum(len(records) for _, _, records in work)
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(run_once, work)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    best = min(run_once(work) for _ in range(5))
    print(f"{workload_name}: {n} events, best of 5 {best:.2f} s CPU, {best / n * 1e6:.1f} µs/event")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(
        args[0] if args else "survey",
        int(args[1]) if len(args) > 1 else 200_000,
        profile="--profile" in sys.argv,
    )
