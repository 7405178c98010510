"""Real ``cxpulse worker`` processes for the benchmark, and what is measured from outside them.

Everything is read the way an operator would: event counts from
``cx_events_total`` on ``/metrics``, CPU time (user + system) from
``/proc/<pid>/stat``, peak RSS (``VmHWM``) from ``/proc/<pid>/status``. Workers
run with the default settings (every window, the ``channel`` segment, a 10 s
emit interval, the memory store); only names, the web port and the idle
timeout differ. The idle timeout is 30 min because the replayed event times
are far from the wall clock: a partition that falls quiet for a minute while
the benchmark waits must not be left out of the watermark.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.workloads import FAMILIES, PARTITIONS
from cxpulse.agents.tools.broker import free_port

ROOT = Path(__file__).resolve().parents[1]
#: (topic, outcome) -> count, summed over the scraped workers
Counts = dict[tuple[str, str], float]


def topic_names(tag: str) -> dict[str, str]:
    """Fresh input and output topic names for one benchmark configuration."""
    names = {family: f"bench-{family}-{tag}" for family in FAMILIES}
    names.update(kpi=f"bench-kpi-{tag}", alerts=f"bench-alerts-{tag}")
    names.update(deadletter=f"bench-deadletter-{tag}")
    return names


def worker_env(tag: str, broker_url: str, topics: dict[str, str]) -> dict[str, str]:
    """The environment of every worker of one configuration: one consumer group, own topics."""
    return {
        "CXPULSE_BROKER_URL": broker_url,
        "CXPULSE_WORKER_APP_ID": f"bench-{tag}",
        "CXPULSE_TOPICS_SURVEY": topics["survey"],
        "CXPULSE_TOPICS_CART": topics["cart"],
        "CXPULSE_TOPICS_TICKET": topics["ticket"],
        "CXPULSE_TOPICS_KPI": topics["kpi"],
        "CXPULSE_TOPICS_ALERTS": topics["alerts"],
        "CXPULSE_TOPICS_DEADLETTER": topics["deadletter"],
        "CXPULSE_TOPICS_PARTITIONS": str(PARTITIONS),
        "CXPULSE_TIME_IDLE_TIMEOUT": "30m",
    }


#: ``/metrics`` restricted to ``cx_events_total``: a scrape the worker answers cheaply
EVENTS_PATH = "/metrics?name[]=cx_events_total"


def parse_event_counts(text: str) -> Counts:
    """``cx_events_total`` samples of an exposition, without a full Prometheus parse.

    The full parser costs tens of milliseconds on a worker with thousands of KPI
    series, which would limit how often the latency phase can look.
    """
    out: Counts = {}
    for line in text.splitlines():
        if not line.startswith("cx_events_total{"):
            continue
        labels, _, value = line[len("cx_events_total{") :].rpartition("} ")
        parsed = dict(
            part.split("=", 1) for part in labels.split(",") if "=" in part
        )  # values never contain commas: topic names and outcomes
        key = (parsed.get("topic", "").strip('"'), parsed.get("outcome", "").strip('"'))
        out[key] = out.get(key, 0.0) + float(value)
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Worker:
    """One worker process with its own web port and log file."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        env = {**os.environ, **self.env, "CXPULSE_WEB_PORT": str(self.port)}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cxpulse.agents.cli", "worker", "--embedded-tuning"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:  # refused, or 503 (HTTPError is an OSError)
            return False

    def counts(self) -> Counts:
        with urllib.request.urlopen(f"{self.url}{EVENTS_PATH}", timeout=10) as r:
            return parse_event_counts(r.read().decode())

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``path``; a 503 is an answer, not an error."""
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample on ``/metrics``, by (name, sorted labels): a full parse."""
        status, body = self.get("/metrics")
        assert status == 200, status
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not stop within 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def total(counts_by_worker: list[Counts], topics: set[str] | None = None) -> float:
    """Events counted by all workers (every outcome), optionally only on ``topics``."""
    return sum(
        v for c in counts_by_worker for (t, _), v in c.items() if topics is None or t in topics
    )


def wait_stable(workers: list[Worker], timeout_s: float = 120.0, settle_s: float = 4.0) -> None:
    """Until every worker answers ``/healthz`` 200 for ``settle_s`` in a row.

    ``/healthz`` is 503 while the group rebalances; the embedded broker waits half
    the session timeout (3 s) before it completes a join, so 4 s of health in a
    row means the group has settled with every worker in it.
    """
    deadline = time.monotonic() + timeout_s
    since: float | None = None
    while time.monotonic() < deadline:
        for w in workers:
            if not w.alive():
                raise RuntimeError(f"a worker exited at start-up:\n{w.log_tail()}")
        if all(w.healthy() for w in workers):
            since = since or time.monotonic()
            if time.monotonic() - since >= settle_s:
                return
        else:
            since = None
        time.sleep(0.2)
    tails = "\n---\n".join(w.log_tail() for w in workers)
    raise RuntimeError(f"workers not healthy after {timeout_s:.0f}s:\n{tails}")
