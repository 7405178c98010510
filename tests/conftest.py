"""Shared fixtures: one embedded broker per test session, and unique names per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from cxpulse.agents.tools.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A Tansu broker on a free port for the whole session (its log is kept in a tmp dir)."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=str(log_path)) as running:
        yield running


@pytest.fixture
def unique() -> str:
    """A short random string for topic names, group and app ids that no other test uses."""
    return uuid.uuid4().hex[:8]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``CX_TEST_DUMP_DIR`` set, a failed test's topics are written there.

    For the intermittent failures a test cannot show by itself: every record of
    every topic whose name holds the test's unique id (inputs, partials, ticks,
    changelogs, KPI records), one JSON line each, read before the broker stops.
    """
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    dump_dir = os.environ.get("CX_TEST_DUMP_DIR")
    funcargs = getattr(item, "funcargs", {})
    if not (dump_dir and report.when == "call" and report.failed):
        return
    running, tag = funcargs.get("broker"), funcargs.get("unique")
    if running is None or tag is None:
        return
    path = Path(dump_dir) / f"{item.name}-{tag}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(_dump_topics(running.bootstrap, tag, path))
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not hide the failure
        print(f"could not dump the topics of {tag}: {exc!r}")


async def _dump_topics(bootstrap: str, tag: str, path: Path) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        topics = sorted(t for t in cluster.topics() if tag in t)
        tps = [TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or []]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        group = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"cx-{tag}")
        await group.start()
        try:  # the worker group's committed offsets (the harness's app id is cx-<unique>)
            committed = {
                f"{tp.topic}:{tp.partition}": await group.committed(tp)
                for tp in tps
                if not tp.topic.endswith("-changelog")
            }
        finally:
            await group.stop()
        with path.open("wb") as out:
            out.write(orjson.dumps({"committed": committed}) + b"\n")
            quiet = 0
            while quiet < 10:
                batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
                quiet = 0 if any(batch.values()) else quiet + 1
                for tp, records in batch.items():
                    for r in records:
                        line = {"t": tp.topic, "p": tp.partition, "o": r.offset, "ts": r.timestamp}
                        line["k"] = r.key.decode(errors="replace") if r.key else None
                        line["v"] = r.value.decode(errors="replace") if r.value else None
                        out.write(orjson.dumps(line) + b"\n")
        print(f"dumped topics {topics} (ends {ends}) to {path}")
    finally:
        await consumer.stop()
