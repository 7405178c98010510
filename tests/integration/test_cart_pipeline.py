"""Carts end to end on the real embedded broker (SPEC §3.2), against the oracle.

* A multi-hour cart stream with duplicates, invalid records, out-of-order arrival
  within the lateness, late events and quiet partitions kept moving by
  heartbeats gives the oracle's final records for every window, segment and end.
* A live-looking stream that goes quiet still abandons its carts, by the
  wall-clock rule; an old replay that goes quiet does not.
* SIGKILL mid-stream: the same final records, no session counted twice or lost.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker
from cxpulse.agents.tools.replay import closing_heartbeat_ts
from cxpulse.agents.tools.traffic import CartTraffic
from cxpulse.schemas.timestamps import format_ts
from cxpulse.streams.settings import load_settings
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
from tests.oracle import Produced, cart_finals, classify

pytestmark = pytest.mark.integration

PARTITIONS = 4
LATENESS_MS = 120_000
T0 = 1_795_046_400_000 + 8 * 3_600_000  # 08:00 UTC


def _partition(cart_id: str, partitions: int) -> int:
    return zlib.crc32(cart_id.encode()) % partitions


def build_dataset(seed: int, journeys: int = 300, partitions: int = PARTITIONS) -> list[Produced]:
    rng = random.Random(seed)
    traffic = CartTraffic(seed=seed)
    events: list[dict[str, Any]] = []
    for i in range(journeys):
        events.extend(traffic.journey(T0 + i * 60_000 + rng.randrange(60_000)))
    events.sort(key=lambda e: e["ts"] + rng.randrange(50_000))  # out of order within lateness
    out: list[Produced] = []
    next_heartbeat = T0
    for ev in events:
        if ev["ts"] >= next_heartbeat:  # quiet partitions move on with heartbeats
            hb = {"type": "heartbeat", "ts": ev["ts"] - 60_000}
            out.extend(Produced(p, hb) for p in range(partitions))
            next_heartbeat = ev["ts"] + 20 * 60_000
        p = _partition(ev["cart_id"], partitions)
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
    kind = rng.choice(("invalid_json", "schema", "out_of_range"))
    bad = dict(ev)
    if kind == "invalid_json":
        return Produced(p, orjson.dumps(bad)[:-2], kind)
    if kind == "schema":
        bad["cart_value"] = "12.5"
    else:
        bad["cart_value"] = -1
    return Produced(p, orjson.dumps(bad), kind)


def encode(rec: Produced) -> tuple[int, bytes | None, bytes]:
    if isinstance(rec.value, bytes):
        return rec.partition, None, rec.value
    key = rec.value.get("cart_id")
    return rec.partition, key.encode() if key else None, orjson.dumps(rec.value)


def closing(records: list[Produced], partitions: int = PARTITIONS) -> list[Produced]:
    settings = load_settings(env={})
    max_ts = max(r.value["ts"] for r in records if r.invalid_reason is None)
    hb = {"type": "heartbeat", "ts": closing_heartbeat_ts(max_ts, settings)}
    return [Produced(p, hb) for p in range(partitions)]


def expected_finals(
    records: list[Produced], partitions: int = PARTITIONS, env: Mapping[str, str] | None = None
) -> dict[tuple[str, str, str, str], Any]:
    """The oracle's finals, for the windows of the settings ``env`` gives (default: SPEC's)."""
    settings = load_settings(env=env or {})
    windows = [(w.name, w.size_ms, w.step_ms) for w in settings.windows]
    accepted = classify(records, partitions, LATENESS_MS).accepted
    finals = cart_finals(accepted, windows)
    return {(m, w, s, format_ts(end)): v for (m, w, s, end), v in finals.items()}


def test_cart_replay_gives_the_oracles_final_records(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=5)
    expected = expected_finals(records)
    assert len(expected) > 1000
    env = worker_env(unique, broker.url)
    topic = env["CXPULSE_TOPICS_CART"]
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records + closing(records))))
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_finals(finals, expected)
        letters = asyncio.run(read_all(broker.bootstrap, env["CXPULSE_TOPICS_DEADLETTER"]))
        classified = classify(records, PARTITIONS, LATENESS_MS)
        reasons = sorted(x["reason"] for x in letters)
        want = sorted(
            [r.invalid_reason or "" for r in classified.invalid] + ["late"] * len(classified.late)
        )
        assert reasons == want
        samples = metric_samples(worker)
        assert samples[("cx_carts_open", (("channel", "all"),))] == 0  # all closed by the end
    finally:
        worker.stop()


def _cart_event(cart: str, ts: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"{cart}-1",
            "type": "checkout_started",
            "ts": ts,
            "cart_id": cart,
            "channel": "web",
            "cart_value": 42.5,
        }
    )


def _quiet_env(unique: str, broker: EmbeddedBroker) -> dict[str, str]:
    return worker_env(
        unique,
        broker.url,
        CXPULSE_TIME_IDLE_TIMEOUT="5s",
        CXPULSE_CARTS_ABANDON_AFTER="20s",
        CXPULSE_TIME_ALLOWED_LATENESS="2s",
        CXPULSE_WINDOWS_LIST='["10s/10s"]',
    )


def _abandonments(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [
        r
        for r in asyncio.run(read_all(bootstrap, topic, idle_s=0.5))
        if r["final"]
        and r["metric"] == "cart_abandonment"
        and r["segment"] == "all"
        and r["stats"]["abandoned"]
    ]


@pytest.mark.parametrize("live", [True, False], ids=["live-stream", "old-replay"])
def test_a_quiet_stream_abandons_by_wall_clock_only_when_live(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, live: bool
) -> None:
    env = _quiet_env(unique, broker)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        now = time.time_ns() // 1_000_000
        ts = now if live else now - 30 * 86_400_000
        asyncio.run(
            produce(
                broker.bootstrap, env["CXPULSE_TOPICS_CART"], [(0, b"k1", _cart_event("k1", ts))]
            )
        )
        # idle_timeout 5 s + abandon_after 20 s + a step of 10 s (+ lateness 2 s, ticks)
        bound = 5 + 20 + 10 + 2 + 8
        deadline = time.monotonic() + bound
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not found:
            found = _abandonments(broker.bootstrap, env["CXPULSE_TOPICS_KPI"])
            time.sleep(1)
        open_now = metric_samples(worker).get(("cx_carts_open", (("channel", "all"),)))
        if live:
            assert found, f"no abandonment within {bound}s of a live stream going quiet"
            assert found[0]["window_end"] == format_ts(
                ts + 20_000 - (ts + 20_000) % 10_000 + 10_000
            )
            assert found[0]["stats"]["abandoned_value"] == 42.5
            assert open_now == 0
        else:
            assert not found, "an old replay must not move by the wall clock"
            assert open_now == 1
    finally:
        worker.stop()


def test_sigkill_mid_stream_gives_the_same_cart_finals(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=9, journeys=200)
    expected = expected_finals(records)
    env = worker_env(unique, broker.url)
    topic = env["CXPULSE_TOPICS_CART"]
    half = len(records) // 2
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[:half])))
        time.sleep(1.5)
        worker.kill()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[half:])))
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        time.sleep(0.5)
        worker.kill()  # killed again while starting up / recovering
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, closing(records))))
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_worker_finals(finals, expected, worker)
    finally:
        worker.stop()
