"""Alerts end to end on the real broker (SPEC §4.3): an injected NPS drop fires, then resolves.

Every ``cx.alerts`` and ``cx.kpi`` record the worker wrote validates against its JSON
Schema (``schemas/json``).

Three hours of NPS answers (NPS about +50), with a 20-minute incident (NPS about
−50) in the middle: the ``nps_drop`` rule (10m/1m against 2h/10m here, to keep
the test short) must publish exactly one ``firing`` and, after the incident, one
``resolved`` per segment, nothing in between, and ``cx_alert_firing`` must follow.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker
from tests.integration.harness import (
    WorkerProcess,
    metric_samples,
    produce,
    read_all,
    wait_for_finals,
    worker_env,
)
from tests.record_schemas import assert_valid

pytestmark = pytest.mark.integration

T0 = 1_795_046_400_000
MINUTE = 60_000
RULE = {
    "name": "nps_drop",
    "metric": "nps",
    "window": "10m/1m",
    "baseline": "2h/10m",
    "direction": "drop",
    "threshold": 10,
    "min_n": 30,
    "z": 1.96,
}


def answers() -> list[tuple[int, bytes | None, bytes]]:
    rng = random.Random(4)
    out = []
    for minute in range(200):
        incident = 130 <= minute < 150
        for i in range(8):
            roll = rng.random()
            if incident:
                score = 2 if roll < 0.7 else 8 if roll < 0.9 else 10
            else:
                score = 10 if roll < 0.6 else 8 if roll < 0.9 else 3
            ev = {
                "event_id": f"a{minute}-{i}",
                "type": "answer",
                "ts": T0 + minute * MINUTE + i,
                "survey_id": "s",
                "response_id": f"r{minute}-{i}",
                "customer_id": f"c{i}",
                "channel": "web",
                "question": "nps",
                "score": score,
            }
            out.append((i % 4, f"c{i}".encode(), orjson.dumps(ev)))
    closing = orjson.dumps({"type": "heartbeat", "ts": T0 + 2 * 86_400_000})
    out.extend((p, None, closing) for p in range(4))
    return out


def test_an_injected_nps_drop_fires_once_and_resolves_once(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    env = worker_env(
        unique,
        broker.url,
        CXPULSE_WINDOWS_LIST='["10m/1m", "2h/10m"]',
        CXPULSE_ALERTS_RULES=orjson.dumps([RULE]).decode(),
    )
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, env["CXPULSE_TOPICS_SURVEY"], answers()))
        # every 10m/1m window of nps, all and channel=web, is final once the alerts are decided
        asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], 1))
        records: list[dict[str, Any]] = []
        for _ in range(60):
            records = asyncio.run(read_all(broker.bootstrap, env["CXPULSE_TOPICS_ALERTS"]))
            if len(records) >= 4:
                break
            asyncio.run(asyncio.sleep(1))
        by_segment: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            by_segment.setdefault(rec["segment"], []).append(rec)
        assert set(by_segment) == {"all", "channel=web"}
        for segment, recs in by_segment.items():
            assert [r["state"] for r in recs] == ["firing", "resolved"], segment
            fired, resolved = recs
            assert fired["alert"] == "nps_drop" and fired["metric"] == "nps"
            assert fired["window"] == "10m/1m" and fired["baseline_window"] == "2h/10m"
            assert fired["delta"] >= 10 and fired["z"] >= 1.96 and fired["n"] >= 30
            assert fired["current"] < fired["baseline"]
            # fires during the incident (minutes 130-150), resolves after it left the window
            assert "T02:1" in fired["at"] or "T02:2" in fired["at"], fired["at"]
            assert resolved["at"] > fired["at"]
            assert set(fired) == {
                "schema_version",
                "alert",
                "metric",
                "segment",
                "state",
                "current",
                "baseline",
                "delta",
                "z",
                "n",
                "window",
                "baseline_window",
                "at",
                "emitted_at",
            }
        # the record contracts (schemas/json) hold for what the worker really wrote
        assert_valid("cx.alerts", records)
        kpis = asyncio.run(read_all(broker.bootstrap, env["CXPULSE_TOPICS_KPI"]))
        assert len(kpis) >= 400, len(kpis)
        assert_valid("cx.kpi", kpis)
        samples = metric_samples(worker)
        assert samples[("cx_alert_firing", (("alert", "nps_drop"), ("channel", "all")))] == 0
        assert samples[("cx_alert_firing", (("alert", "nps_drop"), ("channel", "web")))] == 0
    finally:
        worker.stop()
