"""Real worker processes and real topics for the integration tests (no mocks)."""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from benchmarks.workers import Worker
from cxpulse.agents.kafka.transport import probe_true_ends
from cxpulse.agents.worker.app import topic_names
from cxpulse.streams.settings import load_settings


@dataclass
class WorkerProcess(Worker):
    """``cxpulse worker`` as a child process (:class:`benchmarks.workers.Worker`), with
    the waits and signals the tests need."""

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log_tail(60)
            try:
                status, _ = self.get("/healthz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not healthy after {timeout}s\n{self.log_tail(60)}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


#: the repository (``cxpulse bench`` and the tools run from a source checkout)
ROOT = Path(__file__).resolve().parents[2]


def run_bench(
    out: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``cxpulse bench *args --out out`` from the checkout; its output and its JSON result.

    Fails with the tail of its output unless it exits 0.
    """
    done = subprocess.run(
        [sys.executable, "-m", "cxpulse.agents.cli", "bench", *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done, orjson.loads(out.read_bytes())


#: Workers' table stores, under one folder removed when the test session ends.
_DATA = tempfile.TemporaryDirectory(prefix="cxpulse-test-")


def worker_env(unique: str, broker_url: str, **extra: str) -> dict[str, str]:
    """Unique topics and app id, the real broker, fast emission, no wall-clock idling."""
    env = {
        "CXPULSE_BROKER_URL": broker_url,
        "CXPULSE_WORKER_APP_ID": f"cx-{unique}",
        "CXPULSE_TOPICS_SURVEY": f"survey-{unique}",
        "CXPULSE_TOPICS_CART": f"cart-{unique}",
        "CXPULSE_TOPICS_TICKET": f"ticket-{unique}",
        "CXPULSE_TOPICS_CUSTOMER": f"customer-{unique}",
        "CXPULSE_TOPICS_KPI": f"kpi-{unique}",
        "CXPULSE_TOPICS_ALERTS": f"alerts-{unique}",
        "CXPULSE_TOPICS_DEADLETTER": f"deadletter-{unique}",
        "CXPULSE_TOPICS_PARTITIONS": "4",
        "CXPULSE_EMIT_INTERVAL": "1s",
        "CXPULSE_TIME_IDLE_TIMEOUT": "30m",
        "CXPULSE_STORE_DATA_DIR": str(Path(_DATA.name) / unique),
    }
    env.update(extra)
    return env


async def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[int, bytes | None, bytes]],
    **options: Any,
) -> None:
    """Send ``(partition, key, value)`` records, all acknowledged (``options``: more
    client settings, e.g. TLS)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, acks="all", max_request_size=8 << 20, **options
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, partition=partition)
            for partition, key, value in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _from_beginning(bootstrap: str, topic: str, **options: Any) -> AIOKafkaConsumer:
    """A started consumer, outside any group, at the first record of every partition
    (``options``: more client settings, e.g. TLS)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **options
    )
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic)
    for _ in range(50):
        if partitions:
            break
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
        await asyncio.sleep(0.1)
    tps = [TopicPartition(topic, p) for p in sorted(partitions or [])]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer


async def read_all(
    bootstrap: str, topic: str, idle_s: float = 1.5, max_s: float = 120.0
) -> list[Any]:
    """Every record of a topic from the beginning, decoded as JSON, until it is quiet.

    At most ``max_s``: a topic a worker keeps writing to (provisional records every
    ``[emit] interval``, 1 s here) may never be quiet for ``idle_s``.
    """
    consumer = await _from_beginning(bootstrap, topic)
    try:
        out: list[Any] = []
        start = quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle_s and time.monotonic() - start < max_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            if any(batch.values()):
                quiet_since = time.monotonic()
            for records in batch.values():
                out.extend(orjson.loads(r.value) for r in records)
        return out
    finally:
        await consumer.stop()


async def committed_and_ends(
    bootstrap: str, group: str, topic: str, partitions: int
) -> tuple[dict[int, int | None], dict[int, int]]:
    """A consumer group's committed offsets on ``topic``, and the topic's end offsets.

    Asked by a consumer that does not join the group (OffsetFetch only). The ends
    come from fetching, not ``ListOffsets``, which Tansu has answered too low.
    """
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        committed = {tp.partition: await reader.committed(tp) for tp in tps}
        ends = await probe_true_ends(reader, await reader.end_offsets(tps))
        return committed, {tp.partition: ends[tp] for tp in tps}
    finally:
        await reader.stop()


async def committed_offsets(
    bootstrap: str, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    """A consumer group's committed offsets (OffsetFetch only, without joining it)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return {tp: await reader.committed(tp) for tp in tps}
    finally:
        await reader.stop()


async def wait_for_finals(
    bootstrap: str,
    topic: str,
    expected: int | Collection[tuple[str, str, str, str]],
    timeout: float = 180.0,
    settle_s: float = 2.0,
    **options: Any,
) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    """Final KPI records by (metric, window, segment, window_end), once ``expected`` are in.

    ``expected`` is a count, or the keys that must all be there: with a count, a
    worker publishing unexpected records would end the wait before the expected
    ones were all in, and the check would report them missing instead of extra.
    One reader from the first record on, so the wait ends by ``timeout`` even while
    workers keep publishing provisional records; once the expected are in it reads
    ``settle_s`` more, so a duplicate or extra final published with them is seen.
    ``options`` are more client settings (TLS, SASL).
    """
    deadline = time.monotonic() + timeout
    finals: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    consumer = await _from_beginning(bootstrap, topic, **options)
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for records in batch.values():
                for record in records:
                    rec = orjson.loads(record.value)
                    if rec["final"]:
                        key = (rec["metric"], rec["window"], rec["segment"], rec["window_end"])
                        finals.setdefault(key, []).append(rec)
            if isinstance(expected, int):
                done = len(finals) >= expected
            else:
                done = all(key in finals for key in expected)
            if done:
                deadline = min(deadline, time.monotonic() + settle_s)
        return finals
    finally:
        await consumer.stop()


def assert_same(got: Any, want: Any, where: str, rel_tol: float = 1e-12) -> None:
    if isinstance(want, (int, float)) and isinstance(got, (int, float)) and rel_tol > 1e-12:
        assert math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-9), (where, got, want)
    elif isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=rel_tol, abs_tol=1e-12), (where, got, want)
    else:
        assert got == want, (where, got, want)


def quantile_tolerance(metric: str, field: str) -> float:
    """Duration quantiles come from a sketch: within 1 % of nearest-rank (SPEC §3.3)."""
    if metric.endswith(("_seconds", "_seconds_business")) and field in ("value", "p50", "p90"):
        return 0.01
    return 1e-12


def check_finals(
    finals: dict[tuple[str, str, str, str], list[dict[str, Any]]],
    expected: dict[tuple[str, str, str, str], Any],
) -> None:
    missing = set(expected) - set(finals)
    extra = set(finals) - set(expected)
    assert not missing, f"{len(missing)} final records missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected final records, e.g. {sorted(extra)[:3]}"
    for key, copies in finals.items():
        bodies = {orjson.dumps({k: c[k] for k in ("value", "n", "stats")}) for c in copies}
        assert len(bodies) == 1, f"{key} published final with different values: {bodies}"
        rec = copies[0]
        value, n, stats = expected[key]
        metric = key[0]
        assert_same(rec["value"], value, f"{key} value", quantile_tolerance(metric, "value"))
        assert rec["n"] == n, (key, rec["n"], n)
        assert set(rec["stats"]) == set(stats), (key, rec["stats"], stats)
        for name, want in stats.items():
            tol = quantile_tolerance(metric, name)
            assert_same(rec["stats"][name], want, f"{key} stats.{name}", tol)


def metric_samples(worker: Worker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return worker.samples()


def check_worker_finals(
    finals: dict[tuple[str, str, str, str], list[dict[str, Any]]],
    expected: dict[tuple[str, str, str, str], Any],
    worker: WorkerProcess,
) -> None:
    """:func:`check_finals`, and on failure what the worker says (merge watermarks, agents)."""
    try:
        check_finals(finals, expected)
    except AssertionError as exc:
        lines = []
        for what, keys in (
            ("missing", set(expected) - set(finals)),
            ("extra", set(finals) - set(expected)),
        ):
            per_series: dict[tuple[str, str, str], list[str]] = {}
            for metric, window, segment, end in sorted(keys):
                per_series.setdefault((metric, window, segment), []).append(end)
            lines += [
                f"  {key}: {len(ends)} {what}, {ends[0]} .. {ends[-1]}"
                for key, ends in sorted(per_series.items())
            ]
        summary = "\n".join(lines)
        raise AssertionError(
            f"{exc}\nmissing per series:\n{summary}\n{diagnostics(worker)}"
        ) from None
    asyncio.run(wait_committed(worker))


async def wait_committed(worker: WorkerProcess, timeout: float = 20.0) -> None:
    """The worker's group commits everything it has read by now, within a few commit intervals.

    Its inputs and the partials topic: a batch never acknowledged would hold the
    committed offset back for good (e.g. on a partials partition, next to a batch
    handed on before its predecessor), and every restart would replay from it.
    """
    names = topic_names(load_settings(env=worker.env))
    bootstrap = worker.env["CXPULSE_BROKER_URL"].removeprefix("kafka://")
    group = worker.env["CXPULSE_WORKER_APP_ID"]
    partitions = int(worker.env["CXPULSE_TOPICS_PARTITIONS"])
    targets: dict[TopicPartition, int] = {}
    for topic in [*names.sources.values(), names.partials]:
        _, ends = await committed_and_ends(bootstrap, group, topic, partitions)
        targets.update({TopicPartition(topic, p): end for p, end in ends.items()})
    deadline = time.monotonic() + timeout
    while True:  # the ends once, then only the committed offsets until they reach them
        committed = await committed_offsets(bootstrap, group, list(targets))
        behind = {
            f"{tp.topic}:{tp.partition}": (committed[tp], end)
            for tp, end in targets.items()
            if (committed[tp] or 0) < end
        }
        if not behind:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"committed offsets stay behind what was read: {behind}")
        await asyncio.sleep(1.0)


def diagnostics(worker: WorkerProcess) -> str:
    """What a failing test should show about a worker: health, watermarks, lag, counts."""
    try:
        status, body = worker.get("/healthz")
        lines = [f"/healthz {status} {body.decode(errors='replace')}"]
        _, metrics = worker.get("/metrics")
    except OSError as exc:
        return f"worker not answering: {exc}"
    wanted = ("cx_watermark", "cx_consumer_lag", "cx_events_total", "cx_state_entries")
    lines += [ln for ln in metrics.decode().splitlines() if ln.startswith(wanted)]
    return "\n".join(lines)
