"""Scale-out on the real broker: 1, 2 or 3 worker processes, 6 partitions, one answer.

All three input topics (duplicates, invalid, late and out-of-order records) are
processed by a consumer group of N workers: each owns some source and merge
partitions, global KPIs (``all``) sum partitions owned by several of them, and
the final records must equal the oracle's whatever N. Each KPI series is
exported on ``/metrics`` by exactly one worker; when one of three leaves, the two
survivors export every series within one emit interval after the rebalance
completes (``rebalanced_at`` on ``/healthz``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, cast

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
EMIT_INTERVAL_S = 1.0  # worker_env's CXPULSE_EMIT_INTERVAL

Series = tuple[str, tuple[tuple[str, str], ...]]


#: Labelled by ``window`` but about the worker, not a KPI: every worker exports its own
#: "as of" (docs/monitoring.md; a wall takes the minimum across workers).
PER_WORKER = frozenset({"cx_kpi_window_end_timestamp_seconds"})


def kpi_series(worker: WorkerProcess) -> dict[Series, float]:
    """The KPI gauges a worker exports (those with a ``window`` label)."""
    return {
        k: v
        for k, v in metric_samples(worker).items()
        if "window" in dict(k[1]) and k[0] not in PER_WORKER
    }


def wait_stable(workers: list[WorkerProcess], timeout: float = 90) -> None:
    """Every worker healthy, twice in a row 2 s apart: the group has settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in workers:
            worker.wait_healthy(timeout=deadline - time.monotonic())
        marks = [orjson.loads(w.get("/healthz")[1])["rebalanced_at"] for w in workers]
        time.sleep(2)
        if all(w.get("/healthz")[0] == 200 for w in workers) and marks == [
            orjson.loads(w.get("/healthz")[1])["rebalanced_at"] for w in workers
        ]:
            return
    raise AssertionError("the consumer group did not settle")


def exported(workers: list[WorkerProcess]) -> tuple[dict[Series, float], list[set[Series]]]:
    """The union of the KPI series of ``workers`` and each one's set."""
    sets = [kpi_series(w) for w in workers]
    union: dict[Series, float] = {}
    for series in sets:
        union.update(series)
    return union, [set(s) for s in sets]


def assert_disjoint(owned: list[set[Series]]) -> None:
    for i, a in enumerate(owned):
        for b in owned[i + 1 :]:
            assert not a & b, f"series exported by two workers: {sorted(a & b)[:3]}"


@pytest.mark.parametrize("n", [1, 2, 3])
def test_n_workers_give_the_oracles_finals_and_export_each_series_once(
    n: int, broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    data = mixed_dataset(seed=31, partitions=PARTITIONS, scale=0.5)
    env = worker_env(unique, broker.url, CXPULSE_TOPICS_PARTITIONS=str(PARTITIONS), **MIXED_ENV)
    workers = [WorkerProcess(env, tmp_path / f"worker{i}.log").start() for i in range(n)]
    try:
        wait_stable(workers)
        for part in data.parts(1):
            asyncio.run(produce_parts(broker.bootstrap, env, part))
        time.sleep(4)  # provisional records of the open windows, from every owner
        union, owned = exported(workers)
        assert all(owned), "every worker should own some KPI series"
        assert_disjoint(owned)
        if n == 3:
            _leave_and_take_over(workers, union, tmp_path)
        asyncio.run(produce_parts(broker.bootstrap, env, data.closing))
        finals = asyncio.run(
            wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], data.expected)
        )
        check_finals(finals, data.expected)
    finally:
        for worker in workers:
            worker.stop()


def _healthy(worker: WorkerProcess, timeout: float = 10.0) -> dict[str, Any]:
    """The worker's ``/healthz`` body once it answers 200.

    A taken-over merge partition is exported as soon as the tables are recovered,
    a moment before the worker ends its rebalance and ``/healthz`` turns 200.
    """
    deadline = time.monotonic() + timeout
    while True:
        status, body = worker.get("/healthz")
        if status == 200:
            return cast(dict[str, Any], orjson.loads(body))
        assert time.monotonic() < deadline, f"/healthz {status}: {body!r}"
        time.sleep(0.05)


def _leave_and_take_over(
    workers: list[WorkerProcess], before: dict[Series, float], tmp_path: Path
) -> None:
    """One of three leaves (SIGTERM): the survivors export every series, each once,
    within one emit interval after their rebalance completed."""
    leaving, survivors = workers[-1], workers[:-1]
    marks = [_healthy(w)["rebalanced_at"] for w in survivors]
    leaving.stop()
    deadline = time.monotonic() + 60
    while True:
        union, owned = exported(survivors)
        complete_at = time.time() * 1000
        if set(union) == set(before):
            break
        assert time.monotonic() < deadline, f"{len(set(before) - set(union))} series not taken over"
        time.sleep(0.1)
    assert_disjoint(owned)
    assert union == before, "a series changed value when another worker took it over"
    after = [_healthy(w)["rebalanced_at"] for w in survivors]
    assert all(a is not None and a != m for a, m in zip(after, marks, strict=True)), (marks, after)
    took_ms = complete_at - max(after)
    (tmp_path / "takeover_ms").write_text(f"{took_ms:.0f}\n")
    assert took_ms <= EMIT_INTERVAL_S * 1000 + 300, f"took {took_ms:.0f} ms after the rebalance"
