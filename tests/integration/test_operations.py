"""Operating cxpulse against the real embedded broker: ``cxpulse topics`` (create, check,
differences reported and never silently used) and a worker with ``[web] port = 0`` on
the loopback and JSON logs.

What Tansu does with topic settings: it stores the configs given at creation and
returns exactly those from ``DescribeConfigs`` (no broker defaults), accepts any
replication factor on its single node (reporting the one broker that many times),
and enforces none of them (retention, ``max.message.bytes``, ``min.insync.replicas``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from cxpulse.agents.kafka.admin import EXIT_TOPICS_DIFFER, ensure_topics
from cxpulse.agents.tools.broker import EmbeddedBroker
from tests.integration.harness import ROOT, worker_env

pytestmark = pytest.mark.integration


def _cxpulse(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxpulse.agents.cli", *argv],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _configs(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        (resource,) = response.to_object()["resources"]
        entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
        return len(described["partitions"]), entries
    finally:
        await admin.close()


def test_topics_creates_every_topic_then_checks_and_reports_differences(
    broker: EmbeddedBroker, unique: str
) -> None:
    env = worker_env(unique, broker.url)
    kpi, dead = env["CXPULSE_TOPICS_KPI"], env["CXPULSE_TOPICS_DEADLETTER"]

    missing = _cxpulse("topics", "--embedded", "--check", env=env)
    assert missing.returncode == EXIT_TOPICS_DIFFER, missing.stderr
    assert f"MISSING  {kpi} (output)" in missing.stdout

    created = _cxpulse("topics", "--embedded", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    lines = created.stdout.splitlines()
    names = [line.split()[1] for line in lines]
    assert all(line.startswith("created ") for line in lines), created.stdout
    assert f"cx-{unique}-survey-state-changelog" in names
    assert f"cx-{unique}.partials" in names and env["CXPULSE_TOPICS_TICKET"] in names

    partitions, configs = asyncio.run(_configs(broker.bootstrap, dead))
    assert partitions == 4
    assert configs == {
        "cleanup.policy": "delete",
        "retention.ms": str(14 * 86_400_000),
        "max.message.bytes": str(4 << 20),
        "min.insync.replicas": "1",
    }
    _, changelog = asyncio.run(_configs(broker.bootstrap, f"cx-{unique}-merge-state-changelog"))
    assert changelog["cleanup.policy"] == "compact"

    same = _cxpulse("topics", "--embedded", "--check", env=env)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "DIFFERS" not in same.stdout

    changed = {**env, "CXPULSE_TOPICS_KPI_RETENTION": "1d"}
    differs = _cxpulse("topics", "--embedded", env=changed)
    assert differs.returncode == EXIT_TOPICS_DIFFER
    assert differs.stdout.splitlines()[-1] == (
        f"DIFFERS  {kpi}: retention.ms is 604800000, the plan says 86400000"
    )
    assert "1 difference(s)" in differs.stderr
    assert asyncio.run(_configs(broker.bootstrap, kpi))[1]["retention.ms"] == "604800000"
    allowed = _cxpulse("topics", "--embedded", "--allow-differences", env=changed)
    assert allowed.returncode == 0


def test_topics_made_elsewhere_with_one_replica_are_reported_on_a_real_cluster_plan(
    broker: EmbeddedBroker, unique: str
) -> None:
    env = worker_env(unique, broker.url)
    survey = env["CXPULSE_TOPICS_SURVEY"]
    asyncio.run(ensure_topics(broker.bootstrap, {survey: 2}))
    done = _cxpulse("topics", "--check", env=env)  # no --embedded: replication factor 3
    assert done.returncode == EXIT_TOPICS_DIFFER
    out = done.stdout
    assert f"DIFFERS  {survey}: 2 partitions, the plan says 4" in out
    assert f"DIFFERS  {survey}: replication factor 1, the plan says 3" in out
    assert f"DIFFERS  {survey}: min.insync.replicas is not set" in out


def _listening_address(port: int) -> str:
    """The local address a TCP socket listens on for ``port``, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            return ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    raise AssertionError(f"nothing listens on port {port}")


def test_worker_on_port_0_binds_the_loopback_and_logs_json(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    env = worker_env(
        unique,
        broker.url,
        CXPULSE_WEB_PORT="0",
        CXPULSE_WEB_HOST="127.0.0.1",
        CXPULSE_LOG_FORMAT="json",
        CXPULSE_WORKER_LOG_LEVEL="info",
    )
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cxpulse.agents.cli", "worker", "--embedded-tuning"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            for line in log.read_text().splitlines():
                msg = orjson.loads(line)["msg"]
                if msg.startswith("web server on 127.0.0.1:"):
                    port = int(msg.split(":")[1].split()[0])
            if port is not None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
            time.sleep(0.3)
        else:
            raise AssertionError(f"worker not healthy: {log.read_text()[-3000:]}")
        assert port is not None and port != 0
        assert _listening_address(port) == "127.0.0.1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    bodies = [orjson.loads(line) for line in log.read_text().splitlines()]  # all JSON
    loggers = {b["logger"] for b in bodies}
    assert "cxpulse" in loggers and any(name.startswith("faust") for name in loggers)
    assert all({"ts", "level", "logger", "msg"} <= set(b) for b in bodies)
    assert not [b for b in bodies if "differs from its plan" in b["msg"]]  # it made them
