"""A real Prometheus server scraping a real worker (SPEC §4.2).

Prometheus (the Debian package's server) scrapes a worker on the embedded
broker every second with the project's own recording and alerting rules. Its
HTTP API must return the worker's gauges with the values an independent
computation gives, and an injected NPS drop must take ``CxNpsDrop`` from
pending to firing. The alerting rules are loaded unchanged except their
``for:`` durations, shortened so the test does not wait ten minutes.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cxpulse.agents.tools.broker import EmbeddedBroker, free_port
from tests.deploy.helpers import ALERTING_RULES, RECORDING_RULES, promtool
from tests.integration.harness import WorkerProcess, produce, worker_env
from tests.oracle import Produced, classify, survey_finals

pytestmark = pytest.mark.integration

MINUTE = 60_000
HOUR = 60 * MINUTE
LATENESS_MS = 120_000


def answers(now_ms: int) -> list[Produced]:
    """Seven calm hours (NPS about +50), then 80 minutes of detractors, ending 5 minutes ago."""
    rng = random.Random(11)
    start = now_ms - 8 * HOUR - 20 * MINUTE
    out: list[Produced] = []
    minutes = 8 * 60 + 15
    for minute in range(minutes):
        incident = minute >= minutes - 80
        for i in range(2):
            roll = rng.random()
            if incident:
                score = 1 if roll < 0.7 else 8 if roll < 0.9 else 10
            else:
                score = 10 if roll < 0.6 else 8 if roll < 0.9 else 3
            ts = start + minute * MINUTE + i * 7_000
            ev = {
                "event_id": f"a{minute}-{i}",
                "type": "answer",
                "ts": ts,
                "survey_id": "s",
                "response_id": f"r{minute}-{i}",
                "customer_id": f"c{minute % 13}",
                "channel": "web" if i == 0 else "app",
                "question": "nps",
                "score": score,
            }
            out.append(Produced(minute % 4, ev))
    return out


def encode(rec: Produced) -> tuple[int, bytes | None, bytes]:
    return rec.partition, rec.value["customer_id"].encode(), orjson.dumps(rec.value)


def _config(tmp: Path, worker_port: int) -> Path:
    """prometheus.yml for the test: scrape the worker every second, the project's rules."""
    text = ALERTING_RULES.read_text()
    fast = re.sub(r"(?m)^(\s+for:) \S+$", r"\1 5s", text)
    assert fast != text and "for: 10m" not in fast
    (tmp / "alerting_rules.yml").write_text(fast)
    (tmp / "recording_rules.yml").write_text(RECORDING_RULES.read_text())
    config = tmp / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [recording_rules.yml, alerting_rules.yml]
scrape_configs:
  - job_name: cxpulse
    static_configs:
      - targets: ["127.0.0.1:{worker_port}"]
"""
    )
    return config


class Prometheus:
    """The Prometheus server as a child process with its own port and TSDB directory."""

    def __init__(self, config: Path, tmp: Path) -> None:
        binary = Path(promtool()).with_name("prometheus")
        self.port = free_port()
        self.log = (tmp / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        result = self.api("query", query=expr)["result"]
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k != "__name__")): float(
                r["value"][1]
            )
            for r in result
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def prometheus_for(tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(worker_port: int) -> Prometheus:
        server = Prometheus(_config(tmp_path, worker_port), tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _wait(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:  # Prometheus not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def test_prometheus_scrapes_the_gauges_and_fires_the_nps_drop_alert(
    broker: EmbeddedBroker, unique: str, tmp_path: Path, prometheus_for: Any
) -> None:
    now = time.time_ns() // 1_000_000
    records = answers(now)
    env = worker_env(unique, broker.url, CXPULSE_WINDOWS_LIST='["1h/1m", "7d/1h"]')
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        prometheus = prometheus_for(worker.port)
        asyncio.run(produce(broker.bootstrap, env["CXPULSE_TOPICS_SURVEY"], map(encode, records)))

        # The gauge is the open window containing the topic watermark (docs/decisions.md): its
        # expected value comes from the oracle over the accepted events.
        accepted = classify(records, 4, LATENESS_MS).accepted
        finals = survey_finals(accepted, [("1h/1m", HOUR, MINUTE), ("7d/1h", 7 * 24 * HOUR, HOUR)])
        # the topic watermark: the least advanced partition's (all are active)
        watermark = (
            min(max(r.value["ts"] for r in records if r.partition == p) for p in range(4))
            - LATENESS_MS
        )
        expected: dict[tuple[str, str], float] = {}
        for (metric, window, segment, end), (value, _n, _stats) in finals.items():
            step = MINUTE if window == "1h/1m" else HOUR
            if metric == "nps" and end - step <= watermark < end:
                channel = segment.partition("=")[2] or "all"
                expected[(window, channel)] = value
        assert {c for _, c in expected} == {"all", "web", "app"}

        seen: dict[tuple[str, str], float] = {}

        def scraped() -> dict[tuple[str, str], float] | None:
            got = prometheus.query('cx_nps_score{job="cxpulse"}')
            seen.clear()
            seen.update({(dict(k)["window"], dict(k)["channel"]): v for k, v in got.items()})
            return dict(seen) if seen == expected else None

        try:
            values = _wait("cx_nps_score in Prometheus equal to the oracle", scraped)
        except AssertionError:
            raise AssertionError(f"Prometheus has {seen}, the oracle says {expected}") from None
        assert values[("1h/1m", "all")] < 0 < values[("7d/1h", "all")]

        def alert_states() -> dict[str, str]:
            alerts = prometheus.api("alerts")["alerts"]
            return {
                a["labels"]["channel"]: a["state"]
                for a in alerts
                if a["labels"]["alertname"] == "CxNpsDrop"
            }

        pending = _wait("CxNpsDrop pending", lambda: "pending" in alert_states().values())
        assert pending

        def all_firing() -> dict[str, str] | None:
            states = alert_states()
            return states if set(states.values()) == {"firing"} else None

        firing = _wait("CxNpsDrop firing", all_firing)
        assert firing == {"all": "firing", "web": "firing", "app": "firing"}
        rules = prometheus.api("rules")["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        assert {"CxNpsDrop", "CxCartAbandonmentRise", "cx:nps_score:max"} <= names
        assert not [r for g in rules for r in g["rules"] if r.get("health") == "err"]
    finally:
        worker.stop()
