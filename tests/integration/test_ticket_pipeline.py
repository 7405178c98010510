"""Support tickets end to end on the real embedded broker (SPEC §3.3), against the oracle.

A multi-day ticket stream (bots answering first, agents later, private notes,
reopen cycles, merges, complaint tags, priorities) with duplicates, invalid
records, out-of-order arrival within the lateness and late events gives the
oracle's final records for every window, segment and end, in calendar and in
business time (Europe/Madrid hours with a holiday): exact for counts and ratios,
percentiles within 1 % of nearest-rank. Then the same with a SIGKILL mid-stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker
from cxpulse.agents.tools.traffic import TicketTraffic
from cxpulse.schemas.timestamps import format_ts
from tests.integration.harness import (
    WorkerProcess,
    check_finals,
    check_worker_finals,
    metric_samples,
    produce,
    read_all,
    wait_for_finals,
    worker_env,
)
from tests.oracle import Produced, WallSchedule, classify, ticket_finals

pytestmark = pytest.mark.integration

PARTITIONS = 4
LATENESS_MS = 120_000
HOUR = 3_600_000
T0 = 1_795_046_400_000  # Wednesday 2026-11-18 00:00 UTC
SLA = {"urgent": HOUR, "high": 4 * HOUR, "normal": 8 * HOUR, "low": 24 * HOUR}
WINDOWS = [("1h/15m", HOUR, 15 * 60_000), ("24h/1h", 24 * HOUR, HOUR)]
SCHEDULE = WallSchedule(
    "Europe/Madrid",
    {0: [(540, 1080)], 1: [(540, 1080)], 2: [(540, 1080)], 3: [(540, 1080)], 4: [(540, 900)]},
    {dt.date(2026, 11, 20)},
)
BUSINESS_ENV = {
    "CXPULSE_WINDOWS_LIST": '["1h/15m", "24h/1h"]',
    "CXPULSE_TICKETS_BUSINESS_HOURS_TIMEZONE": "Europe/Madrid",
    "CXPULSE_TICKETS_BUSINESS_HOURS_HOURS": orjson.dumps(
        {
            "mon": "09:00-18:00",
            "tue": "09:00-18:00",
            "wed": "09:00-18:00",
            "thu": "09:00-18:00",
            "fri": "09:00-15:00",
        }
    ).decode(),
    "CXPULSE_TICKETS_BUSINESS_HOURS_HOLIDAYS": '["2026-11-20"]',
}


def _partition(ticket_id: str, partitions: int) -> int:
    return zlib.crc32(ticket_id.encode()) % partitions


def build_dataset(seed: int, tickets: int = 150, partitions: int = PARTITIONS) -> list[Produced]:
    """Ticket lives over ~2 days, with trouble, ending with closing heartbeats."""
    rng = random.Random(seed)
    traffic = TicketTraffic(seed=seed)
    events: list[dict[str, Any]] = []
    for i in range(tickets):
        events.extend(traffic.lifecycle(T0 + i * 20 * 60_000 + rng.randrange(600_000)))
    events.sort(key=lambda e: e["ts"] + rng.randrange(50_000))
    out: list[Produced] = []
    next_heartbeat = T0
    for ev in events:
        if ev["ts"] >= next_heartbeat:
            hb = {"type": "heartbeat", "ts": ev["ts"] - 60_000}
            out.extend(Produced(p, hb) for p in range(partitions))
            next_heartbeat = ev["ts"] + 30 * 60_000
        p = _partition(ev["ticket_id"], partitions)
        out.append(Produced(p, ev))
        roll = rng.random()
        if roll < 0.03:
            out.append(Produced(p, dict(ev)))
        elif roll < 0.04:
            late = {**ev, "event_id": ev["event_id"] + "-late", "ts": ev["ts"] - 20 * 60_000}
            out.append(Produced(p, late))
        elif roll < 0.06:
            bad = {**ev, "type": "escalated"}
            out.append(Produced(p, orjson.dumps(bad), "schema"))
    max_ts = max(ev["ts"] for ev in events)
    closing = {"type": "heartbeat", "ts": max_ts + 40 * 86_400_000}
    out.extend(Produced(p, closing) for p in range(partitions))
    return out


def encode(rec: Produced) -> tuple[int, bytes | None, bytes]:
    if isinstance(rec.value, bytes):
        return rec.partition, None, rec.value
    key = rec.value.get("ticket_id")
    return rec.partition, key.encode() if key else None, orjson.dumps(rec.value)


def expected_finals(
    records: list[Produced], partitions: int = PARTITIONS
) -> dict[tuple[str, str, str, str], Any]:
    """The oracle's finals for BUSINESS_ENV's windows, SLA targets and business hours."""
    accepted = classify(records, partitions, LATENESS_MS).accepted
    finals = ticket_finals(accepted, WINDOWS, SLA, SCHEDULE)
    return {(m, w, s, format_ts(end)): v for (m, w, s, end), v in finals.items()}


def test_ticket_replay_gives_the_oracles_final_records(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=3)
    expected = expected_finals(records)
    metrics = {k[0] for k in expected}
    assert {
        "ticket_first_response_seconds_business",
        "ticket_sla_breach_business",
        "ticket_full_resolution_seconds",
        "ticket_reopen",
        "ticket_complaints",
    } <= metrics
    env = worker_env(unique, broker.url, **BUSINESS_ENV)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, env["CXPULSE_TOPICS_TICKET"], map(encode, records)))
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_finals(finals, expected)
        letters = asyncio.run(read_all(broker.bootstrap, env["CXPULSE_TOPICS_DEADLETTER"]))
        classified = classify(records, PARTITIONS, LATENESS_MS)
        assert sorted(x["reason"] for x in letters) == sorted(
            ["schema"] * len(classified.invalid) + ["late"] * len(classified.late)
        )
        samples = metric_samples(worker)
        assert samples[("cx_tickets_open", (("channel", "all"),))] == _open_at_end(classified)
    finally:
        worker.stop()


def _open_at_end(classified: Any) -> int:
    """Tickets left open: created, and not solved, closed or merged after the last reopen."""
    state: dict[str, bool | None] = {}
    for ev in sorted(classified.accepted, key=lambda e: e["ts"]):
        tid, kind = ev["ticket_id"], ev["type"]
        if kind == "created" and tid not in state:
            state[tid] = True
        elif tid in state and state[tid] is not None:  # None: closed or merged, terminal
            if kind in ("closed", "merged"):
                state[tid] = None
            elif kind in ("solved", "reopened"):
                state[tid] = kind == "reopened"
    return sum(1 for v in state.values() if v)


def test_sigkill_mid_stream_gives_the_same_ticket_finals(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=8, tickets=100)
    expected = expected_finals(records)
    env = worker_env(unique, broker.url, **BUSINESS_ENV)
    topic = env["CXPULSE_TOPICS_TICKET"]
    third = len(records) // 3
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[:third])))
        time.sleep(1.5)
        worker.kill()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[third : 2 * third])))
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[2 * third :])))
        worker.kill()
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_worker_finals(finals, expected, worker)
    finally:
        worker.stop()
