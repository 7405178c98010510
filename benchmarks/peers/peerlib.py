"""What every peer program shares: its arguments, the NPS category, and its result file.

Standard library only: each peer runs in its own virtualenv, next to this file
(the script's folder is first on ``sys.path``), without cxpulse installed.

A peer counts, per ``(channel, minute of event time)``, the promoters (scores
9-10), passives (7-8) and detractors (0-6) of the ``answer`` events with
question ``nps`` of one topic read from its beginning, ignores everything else
(the closing heartbeats), and stops once it has counted ``--events`` answers and
its results are final. Timing is its own: the clock starts at the first record
it handles and stops when its last result is in, CPU time (every thread of the
process) over the same span.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MINUTE_MS = 60_000

#: (channel, minute) -> [promoters, passives, detractors]
Counts = dict[tuple[str, int], list[int]]


def category(score: int) -> int:
    """0 promoter, 1 passive, 2 detractor."""
    return 0 if score >= 9 else 1 if score >= 7 else 2


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True, help="host:port of the broker")
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--events", type=int, required=True, help="nps answers to count")
    p.add_argument("--channels", type=int, required=True, help="channels in the workload")
    p.add_argument(
        "--lateness-s", type=float, required=True, help="event-time tolerance of the windows"
    )
    p.add_argument("--group", default=f"peer-{os.getpid()}", help="consumer group, if any")
    p.add_argument("--out", required=True, help="the JSON result file")
    return p.parse_args()


@dataclass
class Clock:
    """Wall and CPU time at the first record handled and at the last result."""

    t_first: float | None = None
    cpu_first: float | None = None
    t_last: float | None = None
    cpu_last: float | None = None
    answers: int = field(default=0)

    def first(self) -> None:
        if self.t_first is None:
            self.t_first, self.cpu_first = time.perf_counter(), time.process_time()

    def last(self) -> None:
        self.t_last, self.cpu_last = time.perf_counter(), time.process_time()


def peak_rss_mb() -> float | None:
    """This process's peak resident set (``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def write_result(
    out: str, contender: str, clock: Clock, rows: Iterable[tuple[str, int, int, int, int]]
) -> None:
    """``{"contender", "answers", "seconds", "cpu_s", "peak_rss_mb", "counts": [...]}``."""
    seconds = cpu = None
    if clock.t_first is not None and clock.t_last is not None:
        seconds = clock.t_last - clock.t_first
        assert clock.cpu_first is not None and clock.cpu_last is not None
        cpu = clock.cpu_last - clock.cpu_first
    doc = {
        "contender": contender,
        "answers": clock.answers,
        "seconds": seconds,
        "cpu_s": cpu,
        "peak_rss_mb": peak_rss_mb(),
        "counts": [list(r) for r in rows if r[2] or r[3] or r[4]],
    }
    tmp = Path(out + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)
