"""Profile one worker draining a backlog: ``python -m benchmarks.profile survey 200000``.

``python -m benchmarks.profile answers 200000 28`` profiles the peers' workload
instead (``benchmarks.peers.workload``: nps answers at 28 per second of event
time); a third argument sets the event-time density of any workload (``python -m
benchmarks.profile mixed 200000 28``; by default 28 for ``answers``, the bench's
for the others). The worker inherits the environment, so
``CXPULSE_WINDOWS_LIST='["1m/1m"]'`` profiles the windows the peers compare with.

Starts the embedded broker, produces the workload (``benchmarks.workloads``),
starts one worker and attaches ``py-spy record --gil`` (install it into the venv
first: ``pip install py-spy``) until the backlog is drained, then prints the
functions that hold the GIL most, inclusive and self (e.g.
``benchmarks/profile_survey.txt``); a hot-path change is profiled this way.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from benchmarks.kafka_io import produce_records
from benchmarks.peers.workload import build as answers_workload
from benchmarks.workers import Worker, topic_names, total, worker_env
from benchmarks.workloads import EVENT_TIME_RATE, FAMILIES, PARTITIONS, build
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics


def py_spy() -> str:
    """The ``py-spy`` installed next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: pip install py-spy (into this venv)")
    return found


def summarize(collapsed: Path, top: int = 40) -> str:
    """Inclusive and self shares per function from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        samples += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] += n
        self_[frames[-1]] += n
    out = [f"{samples} samples", "", "## inclusive"]
    out += [f"{100 * n / samples:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "## self"]
    out += [f"{100 * n / samples:5.1f}%  {f}" for f, n in self_.most_common(top)]
    return "\n".join(out)


def main(
    workload_name: str = "survey", events: int = 200_000, density: float | None = None
) -> None:
    if workload_name == "answers":
        backlog = answers_workload(events, density or 28.0).records
        n = events  # the closing heartbeats are not counted
    else:
        backlog = build(
            workload_name, events, 0, event_time_rate=density or EVENT_TIME_RATE
        ).backlog
        n = len(backlog)
    with (
        tempfile.TemporaryDirectory(prefix="cxpulse-profile-") as tmp,
        EmbeddedBroker(log_path=str(Path(tmp) / "tansu.log")) as broker,
    ):
        tag = f"prof-{uuid.uuid4().hex[:6]}"
        topics = topic_names(tag)
        asyncio.run(ensure_topics(broker.bootstrap, {topics[f]: PARTITIONS for f in FAMILIES}))
        asyncio.run(produce_records(broker.bootstrap, topics, backlog))
        worker = Worker(worker_env(tag, broker.url, topics), Path(tmp) / "worker.log").start()
        out = Path(f"/tmp/profile-{workload_name}.txt")
        try:
            while True:
                try:
                    if worker.healthy():
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            spy = subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--gil",
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "-o",
                    str(out),
                    "--pid",
                    str(worker.pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            began = time.perf_counter()
            while total([worker.counts()]) < n:
                time.sleep(0.2)
            took = time.perf_counter() - began
            spy.send_signal(2)
            spy.wait()
        finally:
            worker.stop()
    print(f"drained {n} events in {took:.1f} s ({n / took:,.0f} events/s incl. start-up)")
    print(summarize(out))


if __name__ == "__main__":
    main(
        sys.argv[1] if len(sys.argv) > 1 else "survey",
        int(sys.argv[2]) if len(sys.argv) > 2 else 200_000,
        float(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
