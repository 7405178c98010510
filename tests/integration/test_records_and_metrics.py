"""What a real worker writes and exposes, against the contracts (SPEC §4, schemas/json).

One worker on the embedded broker, the mixed dataset (surveys, carts, tickets with
business hours; duplicates, invalid, late and out-of-order records), plus a bad
record with a key, a timestamp and headers:

* ``promtool check metrics`` finds nothing on a real scrape of ``/metrics``, which
  has ``process_*``, ``cx_build_info``, ``cx_kpi_window_end_timestamp_seconds`` per
  window, the ticket durations with a ``stat`` label, no percentile above its max and
  no ``*_created`` series;
* every ``cx.kpi`` and ``cx.deadletter`` record validates against its JSON Schema,
  the finals still equal the oracle's (percentiles clamped to the max included), and
  a dead letter keeps its source record's key, timestamp and headers.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from base64 import b64decode
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from cxpulse.agents.tools.broker import EmbeddedBroker
from tests.deploy.helpers import promtool
from tests.integration.harness import (
    WorkerProcess,
    check_worker_finals,
    wait_for_finals,
    worker_env,
)
from tests.integration.mixed import MIXED_ENV, mixed_dataset, produce_parts
from tests.record_schemas import assert_valid

pytestmark = pytest.mark.integration

PARTITIONS = 4
DURATIONS = [
    f"cx_ticket_{business}{what}_seconds"
    for business in ("", "business_")
    for what in ("first_response", "first_resolution", "full_resolution")
]
BUSINESS = {name for name in DURATIONS if "_business_" in name}
#: a bad record with everything a dead letter must keep
BAD_KEY = b"t-bad\xe2\x98\x8e"
BAD_TS = 1_700_000_000_123
BAD_HEADERS = [("trace-id", b"abc"), ("trace-id", b"\x00\xff"), ("source", b"crm")]


async def _produce_bad(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            b'{"event_id": "bad-1", "type": "created", "ts": 1700000000000, "ticket_id": 7}',
            key=BAD_KEY,
            partition=2,
            timestamp_ms=BAD_TS,
            headers=BAD_HEADERS,
        )
    finally:
        await producer.stop()


async def _read_records(bootstrap: str, topic: str, idle_s: float = 1.5) -> list[ConsumerRecord]:
    """Every Kafka record of ``topic`` (key, timestamp, headers and all) until quiet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s:
            batch = await consumer.getmany(timeout_ms=200)
            if any(batch.values()):
                quiet_since = time.monotonic()
            for records in batch.values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


def _scrape_with_durations(worker: WorkerProcess, timeout: float = 90.0) -> str:
    """``/metrics`` once ticket duration gauges are there, a business-time one included
    (which durations the open windows have depends on the data: not all six)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        status, body = worker.get("/metrics")
        text = body.decode()
        present = {name for name in DURATIONS if f"{name}{{" in text}
        if status == 200 and present - BUSINESS and present & BUSINESS:
            return text
        time.sleep(0.5)
    names = sorted({line.split("{")[0] for line in text.splitlines() if line.startswith("cx_")})
    raise AssertionError(f"duration gauges missing from /metrics; it has {names}")


def _check_exposition(text: str, windows: set[str]) -> None:
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        result.returncode,
        result.stdout,
        result.stderr,
    )
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    assert "process_cpu_seconds_total" in samples and "process_resident_memory_bytes" in samples
    (build,) = samples["cx_build_info"]
    assert build.value == 1 and build.labels["version"], build
    assert not [n for n in samples if n.endswith("_created")], sorted(samples)
    assert "cx_events_total" in samples
    ends = {s.labels["window"]: s.value for s in samples["cx_kpi_window_end_timestamp_seconds"]}
    assert set(ends) == windows, ends
    assert all(v % 60 == 0 and v > 1.7e9 for v in ends.values()), ends
    for name in DURATIONS:
        series: dict[tuple[str, str], dict[str, float]] = {}
        for s in samples.get(name, []):
            assert set(s.labels) == {"window", "channel", "stat"}, s.labels
            series.setdefault((s.labels["window"], s.labels["channel"]), {})[s.labels["stat"]] = (
                s.value
            )
        for where, stats in series.items():
            assert set(stats) == {"p50", "p90", "mean", "max"}, (name, where, stats)
            assert stats["p50"] <= stats["p90"] <= stats["max"], (name, where, stats)
    assert not [n for n in samples if n.endswith("_mean") or "quantile" in n]
    assert "quantile=" not in text


def _check_restricted(worker: WorkerProcess) -> None:
    """``/metrics?name[]=…`` holds exactly the named series, as client_python's exposition."""
    status, body = worker.get("/metrics?name[]=cx_events_total&name[]=cx_build_info")
    assert status == 200, status
    names = {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert names == {"cx_events_total", "cx_build_info"}, names


def test_a_real_worker_meets_the_record_and_metric_contracts(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    data = mixed_dataset(seed=5, partitions=PARTITIONS, scale=0.5)
    env = worker_env(unique, broker.url, CXPULSE_TOPICS_PARTITIONS=str(PARTITIONS), **MIXED_ENV)
    windows = set(orjson.loads(env["CXPULSE_WINDOWS_LIST"]))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy(timeout=90)
        for part in data.parts(1):
            asyncio.run(produce_parts(broker.bootstrap, env, part))
        asyncio.run(_produce_bad(broker.bootstrap, env["CXPULSE_TOPICS_TICKET"]))
        _check_exposition(_scrape_with_durations(worker), windows)
        _check_restricted(worker)

        asyncio.run(produce_parts(broker.bootstrap, env, data.closing))
        finals = asyncio.run(
            wait_for_finals(broker.bootstrap, env["CXPULSE_TOPICS_KPI"], data.expected)
        )
        check_worker_finals(finals, data.expected, worker)
        kpis = [
            orjson.loads(r.value)
            for r in asyncio.run(_read_records(broker.bootstrap, env["CXPULSE_TOPICS_KPI"]))
        ]
        assert_valid("cx.kpi", kpis)
        assert {r["metric"] for r in kpis} >= {"nps", "cart_abandonment", "tickets_created"}
        for rec in kpis:
            if rec["metric"].endswith(("_seconds", "_seconds_business")):
                stats = rec["stats"]
                assert stats["p50"] <= stats["p90"] <= stats["max"], rec

        letters = asyncio.run(_read_records(broker.bootstrap, env["CXPULSE_TOPICS_DEADLETTER"]))
        values = [orjson.loads(r.value) for r in letters]
        assert_valid("cx.deadletter", values)
        assert {v["reason"] for v in values} >= {"invalid_json", "schema", "late"}
        for record, value in zip(letters, values, strict=True):
            # the Kafka key is the source record's (the value's "key" is it as text)
            text = value["key"]
            key = None if text is None else text.encode()
            if text is not None and value.get("encoding") == "base64":
                key = b64decode(text)
            assert record.key == key, value
        (bad,) = [(r, v) for r, v in zip(letters, values, strict=True) if r.key == BAD_KEY]
        record, value = bad
        assert record.timestamp == BAD_TS
        assert list(record.headers) == BAD_HEADERS
        assert (value["topic"], value["partition"]) == (env["CXPULSE_TOPICS_TICKET"], 2)
        assert value["reason"] == "schema" and "ticket_id" in value["error"]
    finally:
        worker.stop()
