"""SIGKILL at random points during a replay of all three topics.

Five kills, at moments drawn from a seeded random generator (the seed is printed;
``CXPULSE_CRASH_SEED`` replays one): twice a lone worker while it processes a
freshly produced part (mid-batch), twice the older worker of a pair while the
group rebalances (seen on its ``/healthz``), once the last survivor mid-batch.
Two new workers then finish the replay, and the final records must equal the
oracle's — the records of an uninterrupted run — with any re-sent final
identical to the first.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker
from tests.integration.harness import (
    WorkerProcess,
    check_finals,
    metric_samples,
    wait_for_finals,
    worker_env,
)
from tests.integration.mixed import MIXED_ENV, mixed_dataset, produce_parts

pytestmark = pytest.mark.integration

PARTITIONS = 6


def _health(worker: WorkerProcess) -> str:
    try:
        status, body = worker.get("/healthz")
    except OSError:
        return "no answer"
    return "ok" if status == 200 else orjson.loads(body).get("reason", "?")


def _kill_mid_rebalance(worker: WorkerProcess, rng: random.Random) -> str:
    """SIGKILL ``worker`` a random moment after it reports the rebalance a joiner caused."""
    deadline = time.monotonic() + 30
    while (state := _health(worker)) == "ok":
        assert time.monotonic() < deadline, "no rebalance seen"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.5))
    state = f"{state} -> {_health(worker)}"
    worker.kill()
    return state


def test_sigkill_at_five_random_points_gives_the_finals_of_an_uninterrupted_run(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("CXPULSE_CRASH_SEED", random.randrange(1 << 30)))
    print(f"CXPULSE_CRASH_SEED={seed}")
    rng = random.Random(seed)
    data = mixed_dataset(seed=13, partitions=PARTITIONS, scale=0.5)
    env = worker_env(unique, broker.url, CXPULSE_TOPICS_PARTITIONS=str(PARTITIONS), **MIXED_ENV)
    parts = list(data.parts(5))
    spawned: list[WorkerProcess] = []
    kills: list[str] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker{len(spawned)}.log").start()
        spawned.append(worker)
        return worker

    def produce(part: dict[str, list[tuple[int, bytes | None, bytes]]]) -> None:
        asyncio.run(produce_parts(broker.bootstrap, env, part))

    def kill_mid_batch(worker: WorkerProcess) -> None:
        time.sleep(rng.uniform(0.0, 0.8))
        samples = metric_samples(worker).items()
        counted = sum(v for (name, _), v in samples if name == "cx_events_total")
        kills.append(f"mid-batch ({_health(worker)}, {counted:.0f} records counted)")
        worker.kill()

    try:
        for part in parts[:2]:  # kills 1 and 2: a lone worker, mid-batch
            worker = start()
            worker.wait_healthy(timeout=90)
            produce(part)
            kill_mid_batch(worker)
        older = start()
        for part in parts[2:4]:  # kills 3 and 4: mid-rebalance, as a second worker joins
            older.wait_healthy(timeout=90)
            produce(part)
            joiner = start()
            kills.append(f"mid-rebalance ({_kill_mid_rebalance(older, rng)})")
            older = joiner
        older.wait_healthy(timeout=90)
        produce(parts[4])
        kill_mid_batch(older)  # kill 5
        finishers = [start(), start()]
        for worker in finishers:
            worker.wait_healthy(timeout=90)
        produce(data.closing)
        finals = asyncio.run(
            wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], data.expected)
        )
        print("kills:", kills)
        assert len(kills) == 5
        check_finals(finals, data.expected)
    finally:
        for worker in spawned:
            worker.stop()
