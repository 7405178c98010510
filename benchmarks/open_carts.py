"""Memory of a worker holding N open carts, and its recovery time, per table store.

Run: ``.venv/bin/python -m benchmarks.open_carts [carts] [memory|rocksdb]``.
Produces N carts with one ``item_added`` each (all sessions stay open: no
heartbeat moves event time past the abandonment), runs a real worker until it
has accepted them all, reads its RSS, then SIGKILLs it and measures how long a
new worker takes to report all N carts open again (table recovery).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.kafka_io import produce
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics, free_port

T0 = 1_795_046_400_000
#: every cart's event falls within this much event time, well inside the default
#: ``abandon_after`` (30 min), so all N stay open (10 ms apart, 1M carts would span
#: 2.8 h and most would be abandoned before the restart)
SPAN_MS = 1_000_000
#: the workers' output, for when a run does not finish
LOG = Path(tempfile.gettempdir()) / "cxpulse-open-carts-worker.log"
PARTITIONS = 4


def _samples(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "cx_events_total" and s.labels["outcome"] == "accepted":
                out["accepted"] = out.get("accepted", 0.0) + s.value
            if s.name == "cx_carts_open" and s.labels["channel"] == "all":
                out["open"] = s.value
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cxpulse.agents.cli", "worker", "--embedded-tuning"],
        env=env,
        stdout=LOG.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait(port: int, key: str, target: float, timeout: float = 1800) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if _samples(port).get(key, 0.0) >= target:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{key} did not reach {target}")


def main(carts: int, store: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    topic = f"carts-{tag}"
    records = []
    for i in range(carts):
        key = f"cart-{i:08d}".encode()
        value = orjson.dumps(
            {
                "event_id": f"e{i}",
                "type": "item_added",
                "ts": T0 + i * SPAN_MS // carts,
                "cart_id": key.decode(),
                "channel": ["web", "app"][i % 2],
                "cart_value": 19.99,
            }
        )
        records.append((zlib.crc32(key) % PARTITIONS, key, value))
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as data:
        asyncio.run(ensure_topics(broker.bootstrap, {topic: PARTITIONS}))
        port = free_port()
        env = {
            **os.environ,
            "CXPULSE_BROKER_URL": broker.url,
            "CXPULSE_WEB_PORT": str(port),
            "CXPULSE_WORKER_APP_ID": f"carts-{tag}",
            "CXPULSE_TOPICS_CART": topic,
            "CXPULSE_TOPICS_PARTITIONS": str(PARTITIONS),
            "CXPULSE_STORE_URL": f"{store}://",
            "CXPULSE_STORE_DATA_DIR": data,
            "CXPULSE_TIME_IDLE_TIMEOUT": "1h",
        }
        worker = _start(env)
        _wait(port, "accepted", 0)
        baseline = _rss_mb(worker.pid)
        asyncio.run(produce(broker.bootstrap, topic, records))
        _wait(port, "accepted", carts)
        time.sleep(3)
        loaded = _rss_mb(worker.pid)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        started = time.monotonic()
        worker = _start(env)
        _wait(port, "open", carts)
        recovery_s = time.monotonic() - started
        recovered = _rss_mb(worker.pid)
        worker.terminate()
        worker.wait(timeout=30)
    result = {
        "carts": carts,
        "store": store,
        "baseline_rss_mb": baseline,
        "rss_mb": loaded,
        "bytes_per_open_cart": (loaded - baseline) * 2**20 / carts,
        "recovery_s": recovery_s,
        "rss_after_recovery_mb": recovered,
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return result


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
        sys.argv[2] if len(sys.argv) > 2 else "memory",
    )
