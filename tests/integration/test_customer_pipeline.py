"""Customers end to end on the real embedded broker (SPEC §3.4), against the oracle.

A multi-week customer stream (leads, signups, subscriptions, spend) with
duplicates, invalid records, out-of-order arrival within the lateness and late
events gives the oracle's final records for every metric, window, segment and
end, levels included (every window end, also without events). The same finals
after a SIGKILL and restart mid-stream, and with 2 workers on 6 partitions.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker
from cxpulse.agents.tools.replay import closing_heartbeat_ts, route
from cxpulse.agents.tools.traffic import CustomerTraffic
from cxpulse.schemas.timestamps import format_ts
from cxpulse.streams.settings import load_settings
from tests.integration.harness import (
    WorkerProcess,
    check_worker_finals,
    produce,
    read_all,
    wait_for_finals,
    worker_env,
)
from tests.oracle import Produced, classify, customer_finals

pytestmark = pytest.mark.integration

LATENESS_MS = 120_000
T0 = 1_795_046_400_000 - 60 * 86_400_000  # old enough that no event is in the future
HOUR = 3_600_000
WINDOWS = '["1d/1h", "7d/1d"]'
Key = tuple[str, str, str, str]


def _key(ev: dict[str, Any]) -> str:
    _, key = route(ev, load_settings(env={}))
    assert key is not None
    return key


def build_dataset(seed: int, partitions: int, customers: int = 220) -> list[Produced]:
    rng = random.Random(seed)
    traffic = CustomerTraffic(seed=seed, pace=0.3)
    events: list[dict[str, Any]] = []
    for i in range(customers):
        events.extend(traffic.journey(T0 + i * HOUR + rng.randrange(HOUR)))
    for day in range(customers // 24 + 1):
        events.extend(traffic.spend(T0 + day * 24 * HOUR + rng.randrange(HOUR), 4))
    events.sort(key=lambda e: e["ts"] + rng.randrange(50_000))  # out of order within lateness
    out: list[Produced] = []
    next_heartbeat = T0
    for ev in events:
        if ev["ts"] >= next_heartbeat:  # quiet partitions move on with heartbeats
            hb = {"type": "heartbeat", "ts": ev["ts"] - 60_000}
            out.extend(Produced(p, hb) for p in range(partitions))
            next_heartbeat = ev["ts"] + 20 * 60_000
        p = zlib.crc32(_key(ev).encode()) % partitions
        out.append(Produced(p, ev))
        roll = rng.random()
        if roll < 0.03:
            out.append(Produced(p, dict(ev)))  # a duplicate
        elif roll < 0.04:
            late = {**ev, "event_id": ev["event_id"] + "-late", "ts": ev["ts"] - 20 * 60_000}
            out.append(Produced(p, late))
        elif roll < 0.06:
            out.append(_garbage(rng, p, ev))
    return out


def _garbage(rng: random.Random, p: int, ev: dict[str, Any]) -> Produced:
    bad = dict(ev)
    money = "mrr" if "mrr" in ev else "amount" if "amount" in ev else None
    kind = rng.choice(("invalid_json", "schema", "out_of_range" if money else "schema"))
    if kind == "invalid_json":
        return Produced(p, orjson.dumps(bad)[:-2], kind)
    if kind == "out_of_range":
        assert money is not None
        bad[money] = -1
    elif "customer_id" in bad:
        del bad["customer_id"]
    elif "lead_id" in bad:
        del bad["lead_id"]
    else:
        del bad["channel"]
    return Produced(p, orjson.dumps(bad), kind)


def encode(rec: Produced) -> tuple[int, bytes | None, bytes]:
    if isinstance(rec.value, bytes) or rec.value["type"] == "heartbeat":
        raw = rec.value if isinstance(rec.value, bytes) else orjson.dumps(rec.value)
        return rec.partition, None, raw
    return rec.partition, _key(rec.value).encode(), orjson.dumps(rec.value)


def _env(unique: str, broker: EmbeddedBroker, partitions: int) -> dict[str, str]:
    return worker_env(
        unique,
        broker.url,
        CXPULSE_TOPICS_PARTITIONS=str(partitions),
        CXPULSE_WINDOWS_LIST=WINDOWS,
        CXPULSE_CUSTOMERS_GROSS_MARGIN="0.75",
    )


def closing(records: list[Produced], env: dict[str, str], partitions: int) -> list[Produced]:
    max_ts = max(r.value["ts"] for r in records if r.invalid_reason is None)
    hb = {"type": "heartbeat", "ts": closing_heartbeat_ts(max_ts, load_settings(env=env))}
    return [Produced(p, hb) for p in range(partitions)]


def expected_finals(
    records: list[Produced], env: dict[str, str], partitions: int
) -> dict[Key, Any]:
    settings = load_settings(env=env)
    windows = [(w.name, w.size_ms, w.step_ms) for w in settings.windows]
    accepted = classify(records, partitions, LATENESS_MS).accepted
    upto = closing(records, env, partitions)[0].value["ts"] - LATENESS_MS
    finals = customer_finals(accepted, windows, upto, settings.customers.gross_margin)
    return {(m, w, s, format_ts(end)): v for (m, w, s, end), v in finals.items()}


def _run(
    broker: EmbeddedBroker,
    unique: str,
    tmp_path: Path,
    *,
    partitions: int,
    workers: int,
    kill: bool,
) -> None:
    env = _env(unique, broker, partitions)
    records = build_dataset(seed=11 + partitions, partitions=partitions)
    expected = expected_finals(records, env, partitions)
    assert len(expected) > 5000
    metrics = {key[0] for key in expected}
    assert metrics >= {"mrr", "customer_churn", "revenue_churn", "clv", "referral_rate"}
    assert metrics >= {"lead_conversion", "cac", "ltv_cac"}
    topic = env["CXPULSE_TOPICS_CUSTOMER"]
    procs = [WorkerProcess(env, tmp_path / f"worker{i}.log").start() for i in range(workers)]
    try:
        for proc in procs:
            proc.wait_healthy()
        half = len(records) // 2
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[:half])))
        if kill:
            time.sleep(1.5)
            procs[0].kill()
            procs[0] = WorkerProcess(env, tmp_path / "worker0.log").start()
            procs[0].wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[half:])))
        tail = closing(records, env, partitions)
        asyncio.run(produce(broker.bootstrap, topic, map(encode, tail)))
        finals = asyncio.run(
            wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected, timeout=300)
        )
        check_worker_finals(finals, expected, procs[0])
        if not kill and workers == 1:
            letters = asyncio.run(read_all(broker.bootstrap, env["CXPULSE_TOPICS_DEADLETTER"]))
            classified = classify(records, partitions, LATENESS_MS)
            want = [r.invalid_reason or "" for r in classified.invalid]
            want += ["late"] * len(classified.late)
            assert sorted(x["reason"] for x in letters) == sorted(want)
            status, body = procs[0].get("/metrics")
            assert status == 200 and b"cx_mrr{" in body and b"cx_customers_active{" in body
    finally:
        for proc in procs:
            proc.stop()


def test_customer_replay_gives_the_oracles_final_records(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    _run(broker, unique, tmp_path, partitions=4, workers=1, kill=False)


def test_sigkill_mid_stream_gives_the_same_customer_finals(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    _run(broker, unique, tmp_path, partitions=4, workers=1, kill=True)


def test_two_workers_on_six_partitions_give_the_same_customer_finals(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    _run(broker, unique, tmp_path, partitions=6, workers=2, kill=False)
