"""Scale-out on the real broker: two worker processes give the same final records as one.

The survey stream of ``test_survey_pipeline`` (duplicates, invalid, out-of-order
and late records) is processed by two workers in one consumer group: each owns
some source and merge partitions, global KPIs (``all``) sum partitions owned by
both, and the final records must still equal the oracle's. Each KPI series is
then exported by exactly one of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from streams.broker import EmbeddedBroker
from tests.integration.harness import (
    WorkerProcess,
    check_finals,
    produce,
    wait_for_finals,
    worker_env,
)
from tests.integration.test_survey_pipeline import build_dataset, closing, encode, expected_finals

pytestmark = pytest.mark.integration


def test_two_workers_give_the_oracles_finals_and_split_the_series(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=31, invitations=400)
    expected = expected_finals(records)
    env = worker_env(unique, broker.url)
    workers = [WorkerProcess(env, tmp_path / f"worker{i}.log").start() for i in range(2)]
    try:
        for worker in workers:
            worker.wait_healthy(timeout=90)
        topic = env["CXPULSE_TOPICS_SURVEY"]
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records)))
        asyncio.run(asyncio.sleep(4))  # provisional records of the open windows, from both
        owned = []
        for worker in workers:
            _, body = worker.get("/kpis")
            keys = {(r["metric"], r["window"], r["segment"]) for r in orjson.loads(body)["records"]}
            owned.append(keys)
        assert owned[0] and owned[1], "both workers should own some KPI series"
        assert not owned[0] & owned[1], "a KPI series exported by two workers"
        asyncio.run(produce(broker.bootstrap, topic, map(encode, closing(records))))
        finals = asyncio.run(
            wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], len(expected))
        )
        check_finals(finals, expected)
    finally:
        for worker in workers:
            worker.stop()
