"""``cxpulse bench`` end to end, tiny: every figure is in the JSON and every run is verified.

The figures of so small a run mean nothing; what is tested is that the command
starts its broker and workers, measures both workloads with 1 and 2 workers,
checks the workers' final records against its independent counts, writes the
result and exits 0 — and leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks import kafka_io
from benchmarks.kafka_io import ceiling, produce_records
from benchmarks.report import CEILING_FIGURES, RUN_FIGURES
from benchmarks.workloads import DAY0, PARTITIONS, Record
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics
from tests.integration.harness import run_bench

pytestmark = pytest.mark.integration
#: big enough that a worker cannot drain it between two of the bench's scrapes (otherwise
#: there is no throughput window, the figures are missing and the bench fails; at the
#: default event-time density a worker drains 80,000 in under a second)
EVENTS = 150_000


def _processes_with(token: str) -> list[int]:
    """Processes whose environment holds ``token`` (the bench's workers inherit it)."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if token.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


def test_a_tiny_bench_measures_and_verifies_every_configuration(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    token = f"BENCH_TEST_TOKEN={uuid.uuid4().hex}"
    done, doc = run_bench(
        out,
        "--events",
        str(EVENTS),
        "--paced-events",
        "1500",
        env={**os.environ, "BENCH_TEST_TOKEN": token.partition("=")[2]},
    )
    assert doc["verified"] and doc["complete"], doc["missing"]
    assert set(doc["workloads"]) == {"survey", "mixed"}
    assert doc["settings"]["event_time_rate"] == 1_000.0
    for name, wl in doc["workloads"].items():
        assert wl["events"] == EVENTS
        # generated at about the asked density (the first journeys start at a lower one)
        assert 500 < wl["event_time_rate"] <= 1_100, wl["event_time_rate"]
        assert all(wl["ceiling"][f] > 0 for f in CEILING_FIGURES)
        assert [run["workers"] for run in wl["runs"]] == [1, 2]
        for run in wl["runs"]:
            where = f"{name}, {run['workers']} worker(s)"
            for fig in RUN_FIGURES:
                head, _, rest = fig.partition(".")
                value = run[head][rest] if rest else run[head]
                assert value, (where, fig, value)
            assert len(run["peak_rss_mb"]) == run["workers"]
            assert run["latency"]["seen"] == run["latency"]["markers"] > 0, where
            assert run["verification"]["passed"], (where, run["verification"]["problems"])
    checked = set(doc["workloads"]["mixed"]["runs"][0]["verification"]["checks"])
    assert {"nps", "cart_abandonment", "tickets_created"} <= checked
    assert "cxpulse, 2 workers" in done.stdout and "verified against" in done.stdout
    assert not _processes_with(token), "the bench left a process running"


def test_rounds_counterbalance_the_workloads_and_are_summarised(tmp_path: Path) -> None:
    """``--repeat 2``: every workload twice on fresh topics, each run verified, medians shown,
    the second round in the first's reverse order (``benchmarks.rounds``)."""
    out = tmp_path / "results.json"
    done, doc = run_bench(
        out, "--events", str(EVENTS), "--paced-events", "1500", "--workers", "1", "--repeat", "2"
    )
    assert doc["verified"] and doc["complete"], doc["missing"]
    for wl in doc["workloads"].values():
        assert [(run["workers"], run["round"]) for run in wl["runs"]] == [(1, 1), (1, 2)]
        assert len(wl["ceilings"]) == 2
        assert all(run["verification"]["passed"] for run in wl["runs"])
    # counterbalanced: survey then mixed, then mixed then survey
    rounds = [line for line in done.stdout.splitlines() if line.startswith("bench: ")]
    order = [line.split()[1].rstrip(",") for line in rounds if "1 worker(s)" in line]
    assert order == ["survey", "mixed", "mixed", "survey"], rounds
    (ratio,) = doc["summary"]["mixed_to_survey"]
    assert ratio["rounds"] == [1, 2] and len(ratio["events_per_s"]["per_round"]) == 2
    assert "median over the rounds" in done.stdout and "mixed ÷ survey" in done.stdout


async def test_the_ceiling_is_timed_from_its_first_records_outside_the_collectors_reach(
    broker: EmbeddedBroker, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ceiling's consumer starts on an empty topic whose records come 3 s later: the
    wait is not the loop's speed, so its span is the reading alone (a worker's window
    also opens at its first count). While it reads, what the process held before is
    frozen out of the cyclic collector's reach (the bench's process holds the whole
    workload; each collection traversed it), and thawed after."""
    frozen_while_reading: list[int] = []
    tally = kafka_io._tally

    def counting_tally(value: bytes, *acc: Any) -> None:
        if not frozen_while_reading:  # the count walks the frozen objects: once
            frozen_while_reading.append(gc.get_freeze_count())
        tally(value, *acc)

    monkeypatch.setattr(kafka_io, "_tally", counting_tally)
    topic = f"ceiling-{unique}"
    await ensure_topics(broker.bootstrap, {topic: PARTITIONS})
    n = 4_000
    answers = (
        {"type": "answer", "question": "nps", "channel": "web", "score": i % 11, "ts": DAY0 + i}
        for i in range(n)
    )
    records = [Record("t", i % PARTITIONS, b"k", orjson.dumps(a)) for i, a in enumerate(answers)]

    async def produce_later() -> None:
        await asyncio.sleep(3.0)
        await produce_records(broker.bootstrap, {"t": topic}, records)

    producing = asyncio.ensure_future(produce_later())
    figures = await ceiling(broker.bootstrap, [topic], n)
    await producing
    assert figures["measured_s"] < 1.5, figures
    assert figures["events_per_s"] == pytest.approx(n / figures["measured_s"])
    assert figures["cpu_us_per_event"] > 0
    assert frozen_while_reading[0] > 10_000  # the interpreter's own objects at least
    assert gc.get_freeze_count() == 0
