"""``cx_carts_open`` and ``cx_tickets_open`` on real workers, against a brute-force count.

Cart and ticket traffic (out of order within the lateness, duplicates, late and
invalid records) cut off mid-stream, so many carts and tickets are left open and
the last closing events still wait for the watermark when the traffic stops.
The open gauges on ``/metrics``, summed over the workers, must equal the count
of :func:`tests.oracle.open_now` (docs/gauges.md) once the traffic is processed:
with one worker; and with two workers on six partitions after one was SIGKILLed
mid-stream and restarted, then again once a worker is killed after the end of
the traffic and the survivor takes its partitions over with no record left to
read: from the moment its rebalance is over (``/healthz`` 200), not once a batch
or tick has restored each partition.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import cast

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker
from tests.integration import test_cart_pipeline as cart
from tests.integration import test_ticket_pipeline as ticket
from tests.integration.harness import WorkerProcess, produce, worker_env
from tests.integration.mixed import MIXED_ENV
from tests.oracle import Produced, open_now

pytestmark = pytest.mark.integration

LATENESS_MS = 120_000
GAUGES = {"cart": "cx_carts_open", "ticket": "cx_tickets_open"}
TOPICS = {"cart": "CXPULSE_TOPICS_CART", "ticket": "CXPULSE_TOPICS_TICKET"}
ENCODE = {"cart": cart.encode, "ticket": ticket.encode}


def traffic(seed: int, partitions: int) -> dict[str, list[Produced]]:
    """The first 60 % of the pipeline tests' cart and ticket streams, as arrived."""
    carts = cart.build_dataset(seed, 240, partitions)
    tickets = ticket.build_dataset(seed, 120, partitions)[:-partitions]  # no closing heartbeat
    return {"cart": carts[: len(carts) * 6 // 10], "ticket": tickets[: len(tickets) * 6 // 10]}


def expected(data: dict[str, list[Produced]], partitions: int) -> dict[str, Counter[str]]:
    """Per family, the oracle's open count by ``channel`` label value (``all`` included)."""
    out: dict[str, Counter[str]] = {}
    for family, records in data.items():
        counts = open_now(records, partitions, LATENESS_MS, family)
        out[family] = Counter({seg.removeprefix("channel="): n for seg, n in counts.items()})
    return out


def exported(workers: list[WorkerProcess]) -> dict[str, Counter[str]]:
    """The open gauges summed over ``workers`` (as a dashboard sums them)."""
    out: dict[str, Counter[str]] = {family: Counter() for family in GAUGES}
    for worker in workers:
        for (name, labels), value in worker.samples().items():
            for family, gauge in GAUGES.items():
                if name == gauge and value:
                    out[family][dict(labels)["channel"]] += int(value)
    return out


def wait_equal(
    workers: list[WorkerProcess], want: dict[str, Counter[str]], timeout: float = 90.0
) -> None:
    """The summed gauges reach ``want`` and hold it for 3 s (no batch or tick moves them)."""
    assert all(want[f]["all"] > 0 for f in GAUGES), f"traffic leaves nothing open: {want}"
    deadline = time.monotonic() + timeout
    since: float | None = None
    got: dict[str, Counter[str]] = {}
    while time.monotonic() < deadline:
        got = exported(workers)
        if got == want:
            since = since or time.monotonic()
            if time.monotonic() - since >= 3.0:
                return
        else:
            since = None
        time.sleep(0.5)
    raise AssertionError(f"open gauges {got} != the oracle's {want}")


def rebalanced_at(worker: WorkerProcess, timeout: float = 60.0) -> int | None:
    """``rebalanced_at`` from the worker's ``/healthz`` once it answers 200 (ready)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = worker.get("/healthz")
        if status == 200:
            return cast(int | None, orjson.loads(body)["rebalanced_at"])
        assert time.monotonic() < deadline, f"/healthz {status}: {body!r}"
        time.sleep(0.05)


def produce_all(
    broker: EmbeddedBroker, env: dict[str, str], part: dict[str, list[Produced]]
) -> None:
    for family, records in part.items():
        encoded = map(ENCODE[family], records)
        asyncio.run(produce(broker.bootstrap, env[TOPICS[family]], encoded))


def test_one_worker_exports_the_brute_force_open_counts(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    partitions = 4
    data = traffic(seed=5, partitions=partitions)
    want = expected(data, partitions)
    env = worker_env(unique, broker.url, **MIXED_ENV)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        produce_all(broker, env, data)
        wait_equal([worker], want)
    finally:
        worker.stop()


def test_open_counts_survive_a_sigkill_restart_and_a_takeover_after_the_traffic(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    partitions = 6
    rng = random.Random(7)
    data = traffic(seed=9, partitions=partitions)
    want = expected(data, partitions)
    halves = [
        {f: records[: len(records) // 2] for f, records in data.items()},
        {f: records[len(records) // 2 :] for f, records in data.items()},
    ]
    env = worker_env(unique, broker.url, CXPULSE_TOPICS_PARTITIONS=str(partitions), **MIXED_ENV)
    spawned: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker{len(spawned)}.log").start()
        spawned.append(worker)
        return worker

    try:
        first, second = start(), start()
        for worker in (first, second):
            worker.wait_healthy(timeout=90)
        produce_all(broker, env, halves[0])
        time.sleep(rng.uniform(0.2, 1.5))
        second.kill()  # SIGKILL mid-stream
        produce_all(broker, env, halves[1])
        second = start()
        second.wait_healthy(timeout=90)
        wait_equal([first, second], want)
        mark = rebalanced_at(second)
        first.kill()  # after the traffic: the survivor takes every partition, no record comes
        deadline = time.monotonic() + 60
        while rebalanced_at(second) in (mark, None):
            assert time.monotonic() < deadline, "the survivor never rebalanced"
            time.sleep(0.05)
        # the moment its rebalance is over, before any batch or tick could restore a partition
        assert exported([second]) == want
        wait_equal([second], want)
    finally:
        for worker in spawned:
            worker.stop()
