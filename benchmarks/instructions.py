"""Instructions the engine executes, counted by valgrind: ``python -m benchmarks.instructions
answers 50000 [--event-time-rate=N]``.

CPU time on this machine moves by up to 2x between runs and ±30 % between minutes,
so a change of a few percent needs many alternated pairs (``benchmarks.engine``).
callgrind counts instructions instead: the same code on the same input gives the
same count (three runs of 50,000 answers: within 0.1 %), whatever else the machine
does, so a change is compared with its parent in one run each, e.g. from a worktree
of the parent (docs/performance.md). What it does not see: cache misses and memory
stalls, which a change of data layout moves; those still need CPU-time pairs.

The workload (``benchmarks.engine.batches``: ``answers``, ``survey`` or ``mixed``)
is built first, uncounted; the count covers one :func:`benchmarks.engine.run_once`
(a fresh runtime, the source stage on every batch, collections as a worker makes
them), and the process then exits without finalizing. ``--stage=both`` counts the
merge stage too (each source batch's partials as a merge batch), ``--stage=merge``
the merge stage alone on partials built uncounted, ``--group=K`` source batches'
partials per merge batch (a draining worker's merge batches carry several);
``--batch=N`` sets the source batch size (5,000), ``--family=F`` keeps one
family's batches, and ``--heartbeats=drop`` leaves out the heartbeats (``answers`` ends
with heartbeats that close every window and forget every response, as the peers'
bench does; ``survey`` and ``mixed`` have none here): the count with and without them
is what that end costs. Needs ``valgrind`` (with ``callgrind_control``) on the PATH;
about a minute per 50,000 answers.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.engine import batches, merge_batches, run_merge_once, run_once
from benchmarks.workloads import EVENT_TIME_RATE

#: what valgrind prints at the end: ``==123== Collected : 1851680917``
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _heartbeat(value: bytes | None) -> bool:
    """Whether a record of the workload is a heartbeat (they carry ``"type": "heartbeat"``)."""
    return value is not None and orjson.loads(value).get("type") == "heartbeat"


def child(
    workload: str, events: int, rate: float, ready: Path, go: Path, options: dict[str, str]
) -> None:
    """Under valgrind, instrumentation off: build, say so, wait to be counted, run, exit."""
    work = batches(workload, events, int(options.get("batch", 5_000)), event_time_rate=rate)
    if "family" in options:
        work = [batch for batch in work if batch[0] == options["family"]]
    if options.get("heartbeats") == "drop":
        work = [(family, p, [r for r in rs if not _heartbeat(r.value)]) for family, p, rs in work]
        work = [batch for batch in work if batch[2]]
    windows = '["1m/1m"]' if workload == "answers" else None
    stage = options.get("stage", "source")
    merges = merge_batches(work, int(options.get("group", 1)), windows) if stage == "merge" else []
    ready.write_text(str(sum(len(records) for _, _, records in work)))
    while not go.exists():
        time.sleep(0.01)
    if stage == "merge":
        run_merge_once(merges, windows)
    else:
        run_once(work, stage == "both", windows)
    os._exit(0)  # no finalization: freeing the workload is not the engine's work


def count(
    workload: str,
    events: int,
    rate: float = EVENT_TIME_RATE,
    options: dict[str, str] | None = None,
) -> tuple[int, int]:
    """``(instructions, events)`` of one engine run on the workload, under callgrind.

    ``options`` (all optional): ``stage`` ``source`` (the default), ``both`` (each source
    batch's partials through the merge stage, as ``benchmarks.engine --merge``) or
    ``merge`` (the merge stage alone, its partials built uncounted, ``group`` source
    batches' partials per merge batch); ``batch``, the source batch size (5,000);
    ``family``, one family's batches only; ``heartbeats`` ``drop``, the workload
    without its heartbeat records.
    """
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: install valgrind (Debian: apt install valgrind)")
    with tempfile.TemporaryDirectory(prefix="cxpulse-instructions-") as tmp:
        ready, go, log = Path(tmp, "ready"), Path(tmp, "go"), Path(tmp, "valgrind.log")
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--callgrind-out-file=/dev/null",
            f"--log-file={log}",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            workload,
            str(events),
            f"--event-time-rate={rate:g}",
            str(ready),
            str(go),
            *(f"--{name}={value}" for name, value in (options or {}).items()),
        ]
        proc = subprocess.Popen(command)
        try:
            while not ready.exists() or not ready.read_text():
                if proc.poll() is not None:
                    raise RuntimeError(f"valgrind exited early:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
            subprocess.run(
                ["callgrind_control", "--instr=on", str(proc.pid)],
                check=True,
                capture_output=True,
            )
            go.touch()
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
        found = _COLLECTED.search(log.read_text())
        if proc.returncode != 0 or found is None:
            raise RuntimeError(f"no count from valgrind:\n{log.read_text()[-2000:]}")
        return int(found.group(1)), int(ready.read_text())


#: the options of :func:`count`, as ``--name=value`` on the command line
_OPTIONS = ("stage", "batch", "group", "family", "heartbeats")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--child":
        rest = [a for a in args[1:] if not a.startswith("--")]
        flags = dict(a[2:].split("=", 1) for a in args[1:] if a.startswith("--") and "=" in a)
        rate = float(flags.pop("event-time-rate"))
        child(rest[0], int(rest[1]), rate, Path(rest[2]), Path(rest[3]), flags)
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument(
        "workload", nargs="?", default="answers", choices=["answers", "survey", "mixed"]
    )
    parser.add_argument("events", nargs="?", type=int, default=50_000)
    parser.add_argument("--event-time-rate", type=float, default=1_000.0)
    parser.add_argument(
        "--stage",
        choices=["source", "both", "merge"],
        default="source",
        help="source stage (default), both stages, or the merge stage alone",
    )
    parser.add_argument("--batch", type=int, default=5_000, help="source batch size")
    parser.add_argument(
        "--group", type=int, default=1, help="--stage=merge: source batches per merge batch"
    )
    parser.add_argument("--family", choices=["survey", "cart", "ticket"], default=None)
    parser.add_argument(
        "--heartbeats", choices=["keep", "drop"], default=None, help="drop: without them"
    )
    parsed = parser.parse_args(args)
    options = {
        name: str(getattr(parsed, name)) for name in _OPTIONS if getattr(parsed, name) is not None
    }
    instructions, n = count(parsed.workload, parsed.events, parsed.event_time_rate, options)
    what = parsed.stage if parsed.family is None else f"{parsed.stage}, {parsed.family} only"
    if parsed.heartbeats == "drop":
        what += ", no heartbeats"
    print(
        f"{parsed.workload} ({what}, {parsed.event_time_rate:g} events/s of event time,"
        f" batches of {parsed.batch}"
        + (f", {parsed.group} per merge batch" if parsed.stage == "merge" else "")
        + f"): {n} events, {instructions:,} instructions, {instructions / n:,.0f} per event"
    )


if __name__ == "__main__":
    main()
