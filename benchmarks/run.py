"""``cxpulse bench``: throughput of a worker against the raw aiokafka ceiling, same run.

1. Start the embedded broker; produce the survey workload once (4 partitions,
   event times inside one UTC day, then closing heartbeats).
2. Ceiling: a plain aiokafka consumer + orjson + a dict of per-channel,
   per-minute promoter/passive/detractor counts reads it all.
3. cxpulse: a real worker process reads the same topic; events/s is measured
   from its first to its last processed record (``cx_events_total`` on
   ``/metrics``), CPU from ``/proc``; its final ``nps 30d/1d all`` record must
   equal the benchmark's own count, so a fast wrong answer fails.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.synthetic import SurveyTraffic
from streams.broker import EmbeddedBroker, ensure_topics, free_port

PARTITIONS = 4
DAY0 = 1_795_046_400_000  # 2026-11-18T00:00:00Z


def workload(n: int) -> tuple[list[tuple[int, bytes, bytes]], Counter[str]]:
    traffic = SurveyTraffic(seed=5)
    events: list[dict[str, Any]] = []
    i = 0
    while len(events) < n:
        events.extend(traffic.events_at(DAY0 + 3_600_000 + i * 1_000))
        i += 1
    events.sort(key=lambda e: e["ts"])  # in event-time order: nothing is late
    out: list[tuple[int, bytes, bytes]] = []
    nps: Counter[str] = Counter()
    for ev in events:
        key = ev["customer_id"].encode()
        out.append((zlib.crc32(key) % PARTITIONS, key, orjson.dumps(ev)))
        if ev.get("question") == "nps":
            s = ev["score"]
            nps["promoters" if s >= 9 else "passives" if s >= 7 else "detractors"] += 1
    return out, nps


async def produce(bootstrap: str, topic: str, records: list[tuple[int, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks=1)
    await producer.start()
    try:
        pending = []
        for p, key, value in records:
            pending.append(await producer.send(topic, value, key=key, partition=p))
            if len(pending) > 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def ceiling(bootstrap: str, topic: str, n: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    counts: dict[tuple[str, int], list[int]] = {}
    seen = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    while seen < n:
        batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
        for records in batch.values():
            for r in records:
                ev = orjson.loads(r.value)
                if ev.get("type") != "answer" or ev.get("question") != "nps":
                    seen += 1
                    continue
                acc = counts.setdefault((ev["channel"], ev["ts"] // 60_000), [0, 0, 0])
                s = ev["score"]
                acc[0 if s >= 9 else 1 if s >= 7 else 2] += 1
                seen += 1
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await consumer.stop()
    return {"events_per_s": n / elapsed, "cpu_us_per_event": cpu / n * 1e6}


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "cx_events_total":
                out[s.labels["outcome"]] = out.get(s.labels["outcome"], 0.0) + s.value
    return out


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_worker(broker: EmbeddedBroker, topic: str, n: int, tag: str) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "CXPULSE_BROKER_URL": broker.url,
        "CXPULSE_WEB_PORT": str(port),
        "CXPULSE_WORKER_APP_ID": f"bench-{tag}",
        "CXPULSE_TOPICS_SURVEY": topic,
        "CXPULSE_TOPICS_KPI": f"kpi-{tag}",
        "CXPULSE_TOPICS_PARTITIONS": str(PARTITIONS),
        "CXPULSE_TIME_IDLE_TIMEOUT": "30m",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", "--embedded-tuning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first: tuple[float, float] | None = None
        deadline = time.monotonic() + 900
        done = 0.0
        while time.monotonic() < deadline:
            try:
                counts = _scrape(port)
            except OSError:
                time.sleep(0.2)
                continue
            done = sum(counts.values())
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
                cpu_first = _proc_cpu_s(proc.pid)
            if done >= n:
                break
            time.sleep(0.1)
        assert first is not None, "the worker processed nothing"
        elapsed = time.perf_counter() - first[0]
        cpu = _proc_cpu_s(proc.pid) - cpu_first
        processed = done - first[1]
        closing = orjson.dumps({"type": "heartbeat", "ts": DAY0 + 40 * 86_400_000})
        asyncio.run(
            produce(broker.bootstrap, topic, [(p, b"", closing) for p in range(PARTITIONS)])
        )
        final = None
        for _ in range(60):
            final = asyncio.run(final_nps(broker.bootstrap, f"kpi-{tag}"))
            if final is not None:
                break
        return {
            "final_nps": final,
            "events_per_s": processed / elapsed if elapsed > 0 else float("nan"),
            "cpu_us_per_event": cpu / processed * 1e6 if processed else float("nan"),
            "peak_rss_mb": _peak_rss_mb(proc.pid),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def final_nps(bootstrap: str, topic: str) -> dict[str, Any] | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    found = None
    quiet = time.monotonic()
    while time.monotonic() - quiet < 3:
        batch = await consumer.getmany(timeout_ms=300, max_records=50_000)
        for records in batch.values():
            quiet = time.monotonic()
            for r in records:
                rec = orjson.loads(r.value)
                if (rec["metric"], rec["window"], rec["segment"], rec["final"]) == (
                    "nps",
                    "30d/1d",
                    "all",
                    True,
                ):
                    found = rec
    await consumer.stop()
    return found


def main(events: int = 200_000, out: str = "benchmarks/results.json") -> int:
    tag = uuid.uuid4().hex[:6]
    topic = f"bench-survey-{tag}"
    records, nps = workload(events)
    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap, {topic: PARTITIONS}))
        asyncio.run(produce(broker.bootstrap, topic, records))
        ceil = asyncio.run(ceiling(broker.bootstrap, topic, len(records)))
        worker = run_worker(broker, topic, len(records), tag)
        rec = worker.pop("final_nps")
    expected = {k: nps[k] for k in ("promoters", "passives", "detractors")}
    got = None if rec is None else {k: rec["stats"][k] for k in expected}
    result = {
        "events": len(records),
        "workload": "survey, 4 partitions, all default windows, segments all+channel",
        "raw_aiokafka": ceil,
        "cxpulse_worker_1": worker,
        "ratio_to_ceiling": worker["events_per_s"] / ceil["events_per_s"],
        "verified": got == expected,
        "expected_nps_counts": expected,
        "worker_nps_counts": got,
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"{'':28}{'events/s':>12}{'CPU µs/event':>14}{'peak RSS MB':>13}")
    print(
        f"{'raw aiokafka + orjson':28}{ceil['events_per_s']:>12,.0f}"
        f"{ceil['cpu_us_per_event']:>14.1f}{'':>13}"
    )
    print(
        f"{'cxpulse worker (1 process)':28}{worker['events_per_s']:>12,.0f}"
        f"{worker['cpu_us_per_event']:>14.1f}{worker['peak_rss_mb']:>13.0f}"
    )
    print(
        f"ratio to ceiling: {result['ratio_to_ceiling']:.2f}; "
        f"output verified against an independent count: {result['verified']}"
    )
    print(f"written: {out}")
    return 0 if result["verified"] else 1
