"""Surveys end to end on the real embedded broker, against the independent oracle.

A few thousand survey events over several hours, with duplicates, invalid
records, out-of-order arrival within the lateness and a few late events, are
produced to a 4-partition topic; a real ``cxpulse worker`` process computes the
KPIs; every final record must equal the oracle's, for every metric, window,
segment and window end; every invalid and late record must be dead-lettered with
its reason; ``/metrics`` must show the same values as the latest records.
A second test kills the worker with SIGKILL mid-replay and restarts it.
"""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from cxpulse.agents.tools.broker import EmbeddedBroker
from cxpulse.agents.tools.replay import closing_heartbeat_ts
from cxpulse.agents.tools.traffic import SurveyTraffic
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
from tests.oracle import Produced, classify, survey_finals

pytestmark = pytest.mark.integration

PARTITIONS = 4
LATENESS_MS = 120_000
T0 = 1_795_000_000_000 - 1_795_000_000_000 % 86_400_000 + 7 * 3_600_000  # 07:00 UTC


def _partition(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def build_dataset(
    seed: int, invitations: int = 700, partitions: int = PARTITIONS
) -> list[Produced]:
    """Survey traffic over ~6 h with every kind of trouble SPEC §1–§2 names."""
    rng = random.Random(seed)
    traffic = SurveyTraffic(seed=seed)
    events: list[dict[str, Any]] = []
    for i in range(invitations):
        events.extend(traffic.events_at(T0 + i * 30_000 + rng.randrange(30_000)))
    # arrival order: event time plus up to 50 s of jitter -> out of order within the lateness
    events.sort(key=lambda e: e["ts"] + rng.randrange(50_000))
    out: list[Produced] = []
    for ev in events:
        p = _partition(ev["customer_id"], partitions)
        out.append(Produced(p, ev))
        roll = rng.random()
        if roll < 0.03:  # a duplicate, shortly after
            out.append(Produced(p, dict(ev)))
        elif roll < 0.035:  # a late copy with a new id, far behind the watermark
            late = {**ev, "event_id": ev["event_id"] + "-late", "ts": ev["ts"] - 15 * 60_000}
            out.append(Produced(p, late))
        elif roll < 0.06:
            out.append(Produced(p, _garbage(rng, ev), _garbage_reason(rng)))
    # reason is decided by the garbage kind; keep them consistent
    return [_fix_garbage(rec) for rec in out]


_GARBAGE = ("invalid_json", "schema", "out_of_range", "schema_ts", "too_large")


def _garbage_reason(rng: random.Random) -> str:
    return rng.choice(_GARBAGE)


def _garbage(rng: random.Random, ev: dict[str, Any]) -> Any:
    return dict(ev)


def _fix_garbage(rec: Produced) -> Produced:
    if rec.invalid_reason is None:
        return rec
    ev = dict(rec.value)
    kind = rec.invalid_reason
    if kind == "invalid_json":
        raw = orjson.dumps(ev)[:-3] + b"\xff"
    elif kind == "schema":
        ev.pop("response_id")
        raw = orjson.dumps(ev)
    elif kind == "out_of_range":
        ev.update(type="answer", question="csat", score=9)
        raw = orjson.dumps(ev)
    elif kind == "schema_ts":
        ev["ts"] = "yesterday"
        raw = orjson.dumps(ev)
        kind = "schema"
    else:
        ev["padding"] = "x" * (1 << 20)
        raw = orjson.dumps(ev)
    return Produced(rec.partition, raw, kind)


def encode(rec: Produced) -> tuple[int, bytes | None, bytes]:
    if isinstance(rec.value, bytes):
        return rec.partition, None, rec.value
    key = rec.value.get("customer_id")
    return rec.partition, key.encode() if key else None, orjson.dumps(rec.value)


def closing(records: list[Produced], partitions: int = PARTITIONS) -> Iterator[Produced]:
    settings = load_settings(env={})
    max_ts = max(r.value["ts"] for r in records if r.invalid_reason is None)
    hb = {"type": "heartbeat", "ts": closing_heartbeat_ts(max_ts, settings)}
    for p in range(partitions):
        yield Produced(p, hb)


def expected_finals(
    records: list[Produced], partitions: int = PARTITIONS, env: Mapping[str, str] | None = None
) -> dict[tuple[str, str, str, str], Any]:
    """The oracle's finals, for the windows of the settings ``env`` gives (default: SPEC's)."""
    settings = load_settings(env=env or {})
    windows = [(w.name, w.size_ms, w.step_ms) for w in settings.windows]
    classified = classify(records, partitions, LATENESS_MS)
    finals = survey_finals(classified.accepted, windows)
    return {(m, w, s, format_ts(end)): v for (m, w, s, end), v in finals.items()}


def test_replay_gives_the_oracles_final_records(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=11)
    expected = expected_finals(records)
    env = worker_env(unique, broker.url)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, env["CXPULSE_TOPICS_SURVEY"], map(encode, records)))
        _check_metrics_match_latest_records(worker)
        asyncio.run(
            produce(broker.bootstrap, env["CXPULSE_TOPICS_SURVEY"], map(encode, closing(records)))
        )
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_finals(finals, expected)
        _check_dead_letters(broker, env, records)
        _check_event_counters(worker, env, records)
    finally:
        worker.stop()
    assert "Traceback" not in worker.log_tail(400), worker.log_tail()


def _check_dead_letters(
    broker: EmbeddedBroker, env: dict[str, str], records: list[Produced]
) -> None:
    letters = asyncio.run(read_all(broker.bootstrap, env["CXPULSE_TOPICS_DEADLETTER"]))
    classified = classify(records, PARTITIONS, LATENESS_MS)
    by_reason: dict[str, int] = {}
    for letter in letters:
        by_reason[letter["reason"]] = by_reason.get(letter["reason"], 0) + 1
        assert letter["topic"] == env["CXPULSE_TOPICS_SURVEY"]
        assert {"partition", "offset", "key", "value", "error", "at"} <= set(letter)
    want: dict[str, int] = {}
    for rec in classified.invalid:
        assert rec.invalid_reason is not None
        want[rec.invalid_reason] = want.get(rec.invalid_reason, 0) + 1
    want["late"] = len(classified.late)
    assert by_reason == want
    late_ids = {orjson.loads(x["value"])["event_id"] for x in letters if x["reason"] == "late"}
    assert late_ids == {ev["event_id"] for ev in classified.late}


def _check_metrics_match_latest_records(worker: WorkerProcess) -> None:
    """With input paused, /metrics must hold the values of the latest provisional records."""
    deadline = 60
    records: list[dict[str, Any]] = []
    for _ in range(deadline):
        _status, body = worker.get("/kpis")
        records = orjson.loads(body)["records"]
        if any(r["metric"] == "nps" for r in records):
            break
        asyncio.run(asyncio.sleep(1))
    assert records, "no provisional records on /kpis"
    asyncio.run(asyncio.sleep(3))  # the input has stopped: the records are stable now
    _, body = worker.get("/kpis")
    records = orjson.loads(body)["records"]
    samples = metric_samples(worker)
    gauges = {
        "nps": ("cx_nps_score", ()),
        "csat": ("cx_csat_ratio", ()),
        "ces": ("cx_ces_mean_score", ()),
        "switch_intent": ("cx_switch_intent_ratio", ()),
        "repurchase_intent": ("cx_repurchase_intent_ratio", ()),
        "response_rate": ("cx_survey_response_ratio", ()),
        "overall_recommend_r": ("cx_experience_correlation", (("question", "nps"),)),
        "overall_switch_r": ("cx_experience_correlation", (("question", "switch"),)),
        "overall_repurchase_r": ("cx_experience_correlation", (("question", "repurchase"),)),
    }
    checked = 0
    correlations = 0
    for rec in records:
        name, extra = gauges[rec["metric"]]
        channel = rec["segment"].partition("=")[2] or "all"
        labels = tuple(sorted((("channel", channel), ("window", rec["window"]), *extra)))
        if rec["value"] is None:
            assert (name, labels) not in samples
            continue
        assert samples[(name, labels)] == pytest.approx(rec["value"], rel=1e-9), (name, labels)
        checked += 1
        correlations += name == "cx_experience_correlation"
        if rec["metric"] == "nps":
            assert samples[("cx_nps_responses", labels)] == rec["n"]
            moe = samples[("cx_nps_margin_of_error", labels)]
            assert moe == pytest.approx(rec["stats"]["moe95"], rel=1e-9)
    assert checked >= 30, f"only {checked} gauges compared"
    assert correlations >= 3, f"only {correlations} correlation gauges compared"


def _check_event_counters(
    worker: WorkerProcess, env: dict[str, str], records: list[Produced]
) -> None:
    classified = classify(records, PARTITIONS, LATENESS_MS)
    samples = metric_samples(worker)
    topic = env["CXPULSE_TOPICS_SURVEY"]

    def count(outcome: str) -> float:
        return samples[("cx_events_total", (("outcome", outcome), ("topic", topic)))]

    assert count("accepted") == len(classified.accepted)
    assert count("duplicate") == classified.duplicates
    assert count("late") == len(classified.late)
    assert count("invalid") == len(classified.invalid)


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_sigkill_mid_replay_recovers_and_gives_the_same_finals(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, store: str
) -> None:
    """With ``rocksdb://`` the restarted worker keeps its local state (the store is
    written only after the broker confirmed the changelog records, with their
    offset): it must not hold a write the changelog lacks, nor miss one."""
    records = build_dataset(seed=23, invitations=500)
    expected = expected_finals(records)
    env = worker_env(unique, broker.url, CXPULSE_STORE_URL=f"{store}://")
    topic = env["CXPULSE_TOPICS_SURVEY"]
    thirds = [
        records[: len(records) // 3],
        records[len(records) // 3 : 2 * len(records) // 3],
        records[2 * len(records) // 3 :],
    ]
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, thirds[0])))
        asyncio.run(asyncio.sleep(2))
        worker.kill()  # SIGKILL after the first third was processed (some of it committed)
        asyncio.run(produce(broker.bootstrap, topic, map(encode, thirds[1])))
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, thirds[2])))
        worker.kill()  # SIGKILL again while the last third is being processed
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, closing(records))))
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_worker_finals(finals, expected, worker)
        # the last worker restored its tables: it did not need to reprocess everything
        accepted = len(classify(records, PARTITIONS, LATENESS_MS).accepted)
        samples = metric_samples(worker)
        topic_labels = (("outcome", "accepted"), ("topic", topic))
        assert 0 < samples[("cx_events_total", topic_labels)] < accepted
    finally:
        worker.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


def test_restarts_before_any_offset_commit_lose_nothing(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    """Workers killed before they ever commit: every restart must read from the start.

    Faust drops the records it fetches for stream partitions while tables recover
    and then seeks back to the committed offsets, skipping partitions without one:
    unless the worker rewinds those, their head is lost (whole windows missing).
    """
    records = build_dataset(seed=31, invitations=400)
    expected = expected_finals(records)
    env = worker_env(unique, broker.url, CXPULSE_WORKER_COMMIT_INTERVAL="1h")
    topic = env["CXPULSE_TOPICS_SURVEY"]
    half = len(records) // 2
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[:half])))
        asyncio.run(asyncio.sleep(2))
        worker.kill()
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, records[half:])))
        asyncio.run(asyncio.sleep(2))
        worker.kill()
        group = env["CXPULSE_WORKER_APP_ID"]
        assert set(asyncio.run(_committed(broker.bootstrap, group, topic)).values()) == {None}
        worker = WorkerProcess(env, tmp_path / "worker.log").start()
        worker.wait_healthy()
        asyncio.run(produce(broker.bootstrap, topic, map(encode, closing(records))))
        finals = asyncio.run(wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], expected))
        check_finals(finals, expected)
    finally:
        worker.stop()
