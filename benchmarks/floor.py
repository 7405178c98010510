"""How low a worker's CPU per answer could go: ``python -m benchmarks.floor [events] [density]``.

On the peers' answer workload (``benchmarks.peers.workload``, default 200,000 answers
at 1,000 per second of event time), with no broker, best of 5 CPU per answer record
(the first four interleaved, round by round):

* ``decode, orjson.loads per record``: what the raw loop of the peers' bench does;
* ``decode, cxpulse's msgspec runs``: the fast path every worker uses
  (:class:`cxpulse.schemas.fastpath.Runs`);
* ``state, plain loop (Python)``: :func:`benchmarks.floor_loop.count_answers`, the
  least per-event state work of an exactly-once count (dedup, response memory,
  labels, minute counts, wake index), checked against the workload's own count;
* ``state, plain loop (C)``: the same source compiled by Cython with the types of
  ``floor_loop.pxd`` (skipped, saying so, without Cython: ``pip install
  cython==3.3.1``), checked likewise;
* ``engine, cxpulse's source stage``: everything a worker's engine does for the
  same records (``benchmarks.engine answers``, windows ``1m/1m``).

The decoders and the engine's line include decoding; the state loops start from
decoded events. So ``decode + state (C)`` is what an engine keeping its state in
Python objects pays per answer at least, before persisting state, producing
records, Kafka I/O and the merge stage (docs/peers.md reads the figures).
"""

from __future__ import annotations

import gc
import importlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import orjson

from benchmarks.engine import batches_of, run_once
from benchmarks.floor_loop import MINUTE_MS, count_answers
from benchmarks.peers.workload import AnswerWorkload, MinuteCounts, build
from cxpulse.schemas.fastpath import fast_surveys

#: records per batch and per decode call, as a draining worker has them
BATCH = 5_000
RUN = 256
HORIZON_MS = 86_400_000  # the contract's default dedup horizon


def partition_values(workload: AnswerWorkload) -> list[list[bytes]]:
    """The records' values per partition, in order, in the engine bench's batches."""
    batches = batches_of(workload.records, BATCH)
    return [cast("list[bytes]", [rec.value for rec in recs]) for _, _, recs in batches]


def decode_msgspec(values: list[list[bytes]]) -> list[list[Any]]:
    """Each batch's answers as cxpulse's fast path decodes them (others dropped)."""
    out = []
    for batch in values:
        events = [e for i in range(0, len(batch), RUN) for e in fast_surveys(batch[i : i + RUN])]
        out.append([e for e in events if e is not None and e.type == "answer"])
    return out


def decode_orjson(values: list[list[bytes]]) -> list[list[Any]]:
    """Each batch's values as the raw loop decodes them: one ``orjson.loads`` each."""
    loads = orjson.loads
    return [[loads(v) for v in batch] for batch in values]


def channel_counts(counts: dict[tuple[int, str], list[int]]) -> MinuteCounts:
    """The loop's counts as the workload's: ``(channel, minute) -> (p, pa, d)``."""
    prefix = "channel="
    return {
        (label[len(prefix) :], start // MINUTE_MS): (c[0], c[1], c[2])
        for (start, label), c in counts.items()
        if label.startswith(prefix)
    }


def compiled_loop() -> ModuleType | None:
    """``floor_loop`` compiled by Cython with its ``.pxd`` types, or ``None`` without Cython."""
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
    except ImportError:
        return None
    build = Path(tempfile.mkdtemp(prefix="cxpulse-floor-"))
    here = Path(__file__).resolve().parent
    for suffix in (".py", ".pxd"):
        shutil.copy(here / f"floor_loop{suffix}", build / f"floor_loop_c{suffix}")
    ext = Extension("floor_loop_c", [str(build / "floor_loop_c.py")])
    # the .pxd alone types it: the annotations are for mypy (``int`` would be a Python int)
    directives = {"annotation_typing": False}
    modules = cythonize(
        [ext], quiet=True, language_level=3, build_dir=str(build), compiler_directives=directives
    )
    dist = Distribution({"ext_modules": modules, "script_name": "floor"})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = cmd.build_temp = str(build)
    dist.run_command("build_ext")
    sys.path.insert(0, str(build))
    try:
        return importlib.import_module("floor_loop_c")
    finally:  # the module stays loaded without its file
        sys.path.remove(str(build))
        shutil.rmtree(build, ignore_errors=True)


def best_of(fns: list[Callable[[], object]], runs: int = 5) -> list[float]:
    """Best CPU seconds of ``runs`` calls of each, the calls interleaved (so a machine
    whose speed drifts favours none of them), the cyclic collector off (a floor, not a
    worker)."""
    best = [float("inf")] * len(fns)
    for _ in range(runs):
        for i, fn in enumerate(fns):
            gc.collect()
            gc.disable()
            try:
                began = time.thread_time()
                fn()
                best[i] = min(best[i], time.thread_time() - began)
            finally:
                gc.enable()
    return best


def main(events: int = 200_000, density: float = 1000.0) -> int:
    workload = build(events, density)
    values = partition_values(workload)
    n = sum(map(len, values))
    decoded = decode_msgspec(values)
    timed: list[tuple[str, Callable[[], object]]] = [
        ("decode, orjson.loads per record", lambda: decode_orjson(values)),
        ("decode, cxpulse's msgspec runs", lambda: decode_msgspec(values)),
    ]
    loops: list[tuple[str, Callable[..., tuple[dict[tuple[int, str], list[int]], int]]]] = [
        ("state, plain loop (Python)", count_answers)
    ]
    compiled = compiled_loop()
    if compiled is not None:
        loops.append(("state, plain loop (C)", compiled.count_answers))
    for name, loop in loops:
        counts, kept = loop(decoded, HORIZON_MS)
        if channel_counts(counts) != workload.counts or kept != workload.answers:
            print(f"{name}: counts differ from the workload's own", file=sys.stderr)
            return 1
        timed.append((name, lambda loop=loop: loop(decoded, HORIZON_MS)))  # type: ignore[misc]
    rows = list(zip([name for name, _ in timed], best_of([fn for _, fn in timed]), strict=True))
    work = batches_of(workload.records, BATCH)
    engine = min(run_once(work, False, '["1m/1m"]') for _ in range(5))
    rows.append(("engine, cxpulse's source stage", engine))
    print(f"{events} answers at {density:g} per second of event time, {n} records, best of 5:")
    for name, seconds in rows:
        print(f"  {name:34s} {seconds / n * 1e6:5.2f} µs/record")
    if compiled is None:
        print("  state, plain loop (C): skipped, no Cython (pip install cython==3.3.1)")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(int(args[0]) if args else 200_000, float(args[1]) if len(args) > 1 else 1000.0))
