"""``make demo`` as a newcomer meets it: ``cxpulse demo`` with its output not a terminal.

The README's first command starts the embedded broker, a worker, the live traffic and
(when the binary is installed) Prometheus, and shows KPIs. This runs it for a bounded
time and checks what a user sees and what is left afterwards: headline KPIs computed
from the traffic, a worker answering on the URL the demo printed, exit status 0, and
none of the processes it started still running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.workers import parse_event_counts
from tests.integration.harness import ROOT

pytestmark = pytest.mark.integration

#: a plain summary line of the view (``cxpulse.agents.tools.view``) with every headline
#: tile holding a number, not a placeholder
SUMMARY = re.compile(
    r"^\d\d:\d\d:\d\d NPS -?\d+\.\d \| CSAT \d+% \| CES \d+\.\d\d \| Cart abandonment \d+% \|"
    r" First response p90 \d+ s \| SLA breached \d+% \| alerts firing: "
)
METRICS_URL = re.compile(r"worker metrics at (http://127\.0\.0\.1:\d+/metrics)")
DURATION_S = 50.0


def _stat(pid: int | str) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, …), or
    ``None`` when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, from ``/proc``'s parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(entry.name) if entry.name.isdigit() else None
        if stat is not None:
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a zombie has exited; only its parent's wait is missing)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def _wait_for(
    path: Path, pattern: re.Pattern[str], demo: subprocess.Popen[bytes], deadline: float
) -> re.Match[str] | None:
    """The first line of ``path`` that matches, while the demo runs and time is left."""
    while time.monotonic() < deadline and demo.poll() is None:
        for line in path.read_text().splitlines():
            found = pattern.search(line)
            if found:
                return found
        time.sleep(0.5)
    return None


def test_the_demo_shows_live_kpis_and_stops_everything_it_started(tmp_path: Path) -> None:
    out, err = tmp_path / "demo.out", tmp_path / "demo.err"
    env = {**os.environ, "CXPULSE_WEB_PORT": "0"}  # a free port, not the README's 6066
    with out.open("w") as stdout, err.open("w") as stderr:
        demo = subprocess.Popen(
            [sys.executable, "-m", "cxpulse.agents.cli", "demo", "--duration", str(DURATION_S)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
        started: set[int] = set()
        try:
            deadline = time.monotonic() + DURATION_S + 30
            first = _wait_for(out, SUMMARY, demo, deadline)
            assert first is not None, f"no KPI summary line:\n{out.read_text()}\n{err.read_text()}"
            started = _descendants(demo.pid)
            url = METRICS_URL.search(err.read_text())
            assert url is not None, err.read_text()
            with urllib.request.urlopen(url.group(1), timeout=10) as response:
                exposition = response.read().decode()
            rc = demo.wait(timeout=DURATION_S + 60)
        finally:
            if demo.poll() is None:  # a failed check: SIGTERM stops the children too
                demo.terminate()
                try:
                    demo.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    for pid in [*_descendants(demo.pid), demo.pid]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    demo.wait()

    assert rc == 0, err.read_text()
    lines = out.read_text().splitlines()
    assert lines[0].startswith("cxpulse: output is not a terminal")
    summaries = [line for line in lines if SUMMARY.match(line)]
    assert len(summaries) >= 2, lines  # a summary every 10 s while the demo runs
    counts = parse_event_counts(exposition)
    accepted = [v for (_, outcome), v in counts.items() if outcome == "accepted"]
    assert accepted and sum(accepted) > 0, exposition[:2000]
    # broker, worker and traffic at least (Prometheus too when installed), none left
    assert len(started) >= 3, started
    assert [pid for pid in started if _running(pid)] == []
