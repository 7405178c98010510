"""The stages alone, no broker: ``python -m benchmarks.engine survey 200000 [--merge] [--profile]
[--event-time-rate=N] [--family=F]``.

``answers`` instead of ``survey`` runs the peers' workload (``benchmarks.peers.workload``:
one nps answer per response, closing heartbeats after), with the windows the peers
compare with (``1m/1m``).

Runs the throughput backlog of ``benchmarks.workloads`` through
:meth:`cxpulse.agents.worker.runtime.Runtime.process_source` in batches of 5,000 per partition
(what a worker draining a backlog mostly gets), collecting garbage as a worker
does (:mod:`cxpulse.agents.worker.collector`), and prints the best CPU time per event of five
runs (or, with ``--profile``, a cProfile of one run); ``--merge`` feeds the
partials to the merge stage as well; ``--family=cart`` keeps one family's batches
of the workload (``mixed``: its carts alone, as the mixed worker sees them). The
worker benchmark (``cxpulse bench``) adds Kafka I/O and Faust and varies by ±15 % on
this machine; an engine change is measured here first, back to back against the
commit before it. (Under CPython's default collector a batch size's effect is mostly
the collector's: 6.2 µs per survey event in batches of 1,000, 8.1 in batches of 5,000.)
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from collections.abc import Iterable

from benchmarks.peers.workload import build as answers_workload
from benchmarks.workloads import EVENT_TIME_RATE, Record, build
from cxpulse.agents.worker.collector import CollectionPolicy
from cxpulse.agents.worker.runtime import Runtime, Send
from cxpulse.schemas.input import InputRecord, RawRecord
from cxpulse.streams.settings import Settings, load_settings

Batch = tuple[str, int, list[InputRecord]]


def batches(
    workload_name: str, events: int, size: int = 5_000, event_time_rate: float = EVENT_TIME_RATE
) -> list[Batch]:
    """The backlog as the consumer would hand it over: per partition, in order."""
    if workload_name == "answers":
        backlog = answers_workload(events, event_time_rate).records
    else:
        backlog = build(workload_name, events, 0, event_time_rate=event_time_rate).backlog
    return batches_of(backlog, size)


def batches_of(backlog: Iterable[Record], size: int = 5_000) -> list[Batch]:
    """Generated records as the consumer would hand them over: per partition, in order,
    in batches of ``size``."""
    parts: dict[tuple[str, int], list[InputRecord]] = {}
    for record in backlog:
        recs = parts.setdefault((record.family, record.partition), [])
        recs.append(RawRecord(len(recs), record.key, record.value, None))
    return [
        (family, partition, recs[i : i + size])
        for (family, partition), recs in parts.items()
        for i in range(0, len(recs), size)
    ]


def _settings(windows: str | None) -> Settings:
    """The defaults, with ``windows`` (a ``windows.list`` value) when given."""
    return load_settings(env={} if windows is None else {"CXPULSE_WINDOWS_LIST": windows})


def run_once(work: list[Batch], merge: bool = False, windows: str | None = None) -> float:
    """CPU seconds to process every batch with a fresh runtime (default settings).

    With ``merge``, each source batch's partials (snapshots and statuses) also go
    through the merge stage, one merge batch per partials partition, as a worker
    with every partition would do; the time is then both stages'.
    """
    runtime = Runtime(_settings(windows), "partials")
    offsets: dict[int, int] = {}
    collector = CollectionPolicy()  # collected as a worker is (cxpulse.agents.worker.collector)
    collector.batches_begin()
    began = time.process_time()
    try:
        for family, partition, records in work:
            _stages(runtime, family, partition, records, offsets, merge)
            collector.after_batch()
    finally:
        collector.batches_end()
    return time.process_time() - began


def merge_batches(
    work: list[Batch], group: int = 1, windows: str | None = None
) -> list[tuple[int, list[InputRecord]]]:
    """The partials the source stage sends for ``work``, as merge batches: per partials
    partition, the partials of ``group`` consecutive source batches (a draining worker's
    merge agent gets those of several at once)."""
    runtime = Runtime(_settings(windows), "partials")
    offsets: dict[int, int] = {}
    merges: list[tuple[int, list[InputRecord]]] = []
    pending: dict[int, list[InputRecord]] = {}
    for i, (family, partition, records) in enumerate(work, 1):
        sends = runtime.process_source(family, partition, records, {}).sends
        _partials(sends, offsets, pending)
        if i % group == 0:
            merges.extend(pending.items())
            pending = {}
    merges.extend(pending.items())
    return merges


def run_merge_once(
    merges: list[tuple[int, list[InputRecord]]], windows: str | None = None
) -> float:
    """CPU seconds for a fresh runtime's merge stage to process ``merges``, collected as a
    worker collects."""
    runtime = Runtime(_settings(windows), "partials")
    collector = CollectionPolicy()
    collector.batches_begin()
    began = time.process_time()
    try:
        for partition, records in merges:
            runtime.process_merge(partition, records, {})
            collector.after_batch()
    finally:
        collector.batches_end()
    return time.process_time() - began


def _stages(
    runtime: Runtime,
    family: str,
    partition: int,
    records: list[InputRecord],
    offsets: dict[int, int],
    merge: bool,
) -> None:
    result = runtime.process_source(family, partition, records, {})
    if not merge:
        return
    partials: dict[int, list[InputRecord]] = {}
    _partials(result.sends, offsets, partials)
    for part, recs in partials.items():
        runtime.process_merge(part, recs, {})


def _partials(
    sends: Iterable[Send], offsets: dict[int, int], into: dict[int, list[InputRecord]]
) -> None:
    """The partials among a source batch's sends, as the merge agent reads them: per
    partials partition, with the offsets that partition's topic would give them."""
    for send in sends:
        topic, key, value, part = send[0], send[1], send[2], send[3]
        if topic == "partials" and part is not None:
            offset = offsets[part] = offsets.get(part, -1) + 1
            into.setdefault(part, []).append(RawRecord(offset, key, value, None))


def main(
    workload_name: str = "survey",
    events: int = 200_000,
    profile: bool = False,
    merge: bool = False,
    event_time_rate: float = EVENT_TIME_RATE,
    family: str | None = None,
) -> None:
    work = batches(workload_name, events, event_time_rate=event_time_rate)
    if family is not None:
        work = [batch for batch in work if batch[0] == family]
    n = sum(len(records) for _, _, records in work)
    windows = '["1m/1m"]' if workload_name == "answers" else None
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(run_once, work, merge, windows)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    best = min(run_once(work, merge, windows) for _ in range(5))
    stages = "source + merge" if merge else "source"
    only = "" if family is None else f", {family} only"
    print(
        f"{workload_name} ({stages}{only}, {event_time_rate:g} events/s of event time):"
        f" {n} events, best of 5 {best:.2f} s CPU,"
        f" {best / n * 1e6:.2f} µs/event"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rates = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--event-time-rate=")]
    only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--family=")]
    main(
        args[0] if args else "survey",
        int(args[1]) if len(args) > 1 else 200_000,
        profile="--profile" in sys.argv,
        merge="--merge" in sys.argv,
        event_time_rate=float(rates[0]) if rates else EVENT_TIME_RATE,
        family=only[0] if only else None,
    )
