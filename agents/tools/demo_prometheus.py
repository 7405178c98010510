"""A local Prometheus server for ``cxpulse demo``, when the ``prometheus`` binary is installed.

The demo points it at its one worker with the project's recording and alerting
rules (``deploy/prometheus``), so what a deployment would show (rule health,
``CxAlertFiring`` for the worker's own alerts, the graphs) can be looked at
during the story. Everything it writes lives in a temporary directory that goes
away with it; without the binary the demo runs as before.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from cxpulse.agents.tools.broker import free_port

#: The project's rules, when cxpulse runs from its source tree (an editable install).
RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULE_FILES = ("recording_rules.yml", "alerting_rules.yml")


def project_rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    """The project's rule files that exist (none when installed without the source tree)."""
    return [rules_dir / name for name in RULE_FILES if (rules_dir / name).is_file()]


def prometheus_config(
    worker_port: int, rule_files: Sequence[Path], interval_s: int = 2, host: str = "127.0.0.1"
) -> str:
    """prometheus.yml for the demo: scrape the one worker, evaluate the given rules.

    The worker refreshes its gauges every 2 s in the demo, so Prometheus scrapes
    and evaluates that often too. Written as JSON, which YAML reads as is.
    """
    interval = f"{interval_s}s"
    config = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"system": "cxpulse-demo"},
        },
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "cxpulse",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"{host}:{worker_port}"]}],
            }
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def prometheus_binary() -> str | None:
    """The installed ``prometheus`` server (Debian package ``prometheus``), if any."""
    return shutil.which("prometheus")


@contextlib.contextmanager
def demo_prometheus(
    worker_port: int, binary: str | None, ready_timeout_s: float = 15.0
) -> Iterator[str | None]:
    """A Prometheus server scraping the worker: yields its URL, or ``None`` without a
    binary or when it did not come up. Stopped, and its files removed, on exit."""
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="cxpulse-prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(prometheus_config(worker_port, project_rule_files()))
        port = free_port()
        with (Path(tmp) / "prometheus.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={Path(tmp) / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                yield _wait_ready(proc, port, ready_timeout_s)
            finally:
                _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> str | None:
    """Its URL once it answers ``/-/ready``; ``None`` if it exited or took too long."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if _ready(port):
            return f"http://127.0.0.1:{port}"
        time.sleep(0.2)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
