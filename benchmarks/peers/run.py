"""``cxpulse bench --peers`` / ``python -m benchmarks.peers``: cxpulse side by side with its peers.

For each event-time density, one topic of the answer workload
(``benchmarks.peers.workload``) is produced once on the embedded broker, then
every contender reads it from offset 0, one after the other, each a process of
its own: the raw loop (in this interpreter: it needs only aiokafka and orjson),
the cxpulse worker (``cxpulse worker`` with windows ``1m/1m``; ``cxpulse-default``
with the SPEC's windows), and the peers, each in its own venv
(``benchmarks.peers.venvs``), which are skipped, saying why, when their install
fails.

What is measured, per contender: events/s from its first record to its last
result (the peers time themselves, see ``peerlib``; the worker is timed from
outside by ``benchmarks.throughput``), CPU µs per event over the same span, peak
RSS (``VmHWM``: a peer reads its own just before it exits), and its
counts per channel and minute checked against the independent count made while
generating (the worker's final ``nps`` records of window ``1m/1m``, or
``15m/1m`` for the default windows, per ``channel=`` segment).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from benchmarks import throughput
from benchmarks.kafka_io import produce_records
from benchmarks.peers import report, venvs
from benchmarks.peers.workload import (
    EVENTS,
    JITTER_MS,
    MINUTE_MS,
    AnswerWorkload,
    build,
    rows_to_counts,
    window_counts,
)
from benchmarks.rounds import round_order
from benchmarks.workers import Worker, peak_rss_mb, topic_names, worker_env
from benchmarks.workloads import FAMILIES
from cxpulse.agents.tools.broker import EmbeddedBroker, ensure_topics
from cxpulse.schemas.timestamps import parse_ts

HERE = Path(__file__).resolve().parent
PARTITIONS = 4
DENSITIES = (3.5, 28.0, 1_000.0)
#: event-time tolerance of the peers' windows: Bytewax and Quix merge the partitions into
#: one stream per key before windowing, so on a replayed backlog one partition's records can
#: run ahead of another's by most of the backlog's span (16 h at 3.5/s); less than that and
#: they drop answers as late (a Quix run at 28/s with 1 h did)
PEER_LATENESS_S = 86_400.0
SCRIPTS = {
    "raw": "raw_loop.py",
    "bytewax": "bytewax_flow.py",
    "quix": "quix_app.py",
    "faust": "faust_app.py",
}
#: cxpulse contender -> (windows, the window verified and its size in minutes)
CXPULSE = {"cxpulse": (["1m/1m"], "1m/1m", 1), "cxpulse-default": (None, "15m/1m", 15)}

__all__ = ["main"]


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int | None, Any]:
    """Reap ``proc``; ``(status, rusage)``, status ``None`` if it is still running at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage
        if time.monotonic() > deadline:
            return None, None
        time.sleep(0.05)


def run_peer(
    name: str,
    python: Path,
    bootstrap: str,
    topic: str,
    workload: AnswerWorkload,
    log_dir: Path,
    *,
    lateness_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    """One peer program on the topic: its figures and its verification."""
    out = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.json"
    log = log_dir / f"{out.stem}.log"
    cmd = [
        str(python),
        str(HERE / SCRIPTS[name]),
        *("--bootstrap", bootstrap, "--topic", topic, "--partitions", str(PARTITIONS)),
        *("--events", str(workload.answers), "--channels", str(workload.channels)),
        *("--lateness-s", str(lateness_s), "--group", f"peer-{out.stem}", "--out", str(out)),
    ]
    with log.open("wb") as f:
        proc = subprocess.Popen(cmd, cwd=HERE, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    status = usage = None
    while status is None and time.monotonic() < deadline and not out.exists():
        status, usage = _wait(proc, 0.5)
    if status is None:  # its result is written, or time is up: it has 20 s to stop
        status, usage = _wait(proc, 0 if not out.exists() else 20)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if status is None:
                proc.send_signal(sig)
                status, usage = _wait(proc, 20)
    entry: dict[str, Any] = {"name": name, "computes": report.COMPUTES[name]}
    if not out.exists():
        tail = log.read_text(errors="replace").splitlines()[-15:]
        return {
            **entry,
            "status": "failed",
            "reason": f"no result (exit {status})",
            "log_tail": tail,
        }
    doc = orjson.loads(out.read_bytes())
    answers, seconds, cpu = doc["answers"], doc["seconds"], doc["cpu_s"]
    verification = report.verify_counts(workload.counts, rows_to_counts(doc["counts"]))
    entry.update(
        status="ok" if verification["passed"] else "failed",
        reason=None if verification["passed"] else "; ".join(verification["problems"][:2]),
        events_per_s=answers / seconds if seconds else None,
        cpu_us_per_event=cpu / answers * 1e6 if answers and cpu is not None else None,
        # its own VmHWM: wait4's ru_maxrss would carry the bench's peak from before exec
        peak_rss_mb=doc.get("peak_rss_mb"),
        process_cpu_s=usage.ru_utime + usage.ru_stime if usage is not None else None,
        measured_s=seconds,
        verification=verification,
    )
    return entry


async def read_window_finals(
    bootstrap: str,
    kpi_topic: str,
    window: str,
    want: int,
    quiet_s: float = 15.0,
    *,
    partitions: int = PARTITIONS,
) -> dict[tuple[str, int], tuple[int, int, int]]:
    """The worker's final ``nps`` records of ``window`` per channel, by (channel, end ms).

    Reads until ``want`` of them are in, or nothing new came for ``quiet_s``.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    found: dict[tuple[str, int], tuple[int, int, int]] = {}
    try:
        tps = [TopicPartition(kpi_topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        last_new = time.monotonic()
        while len(found) < want and time.monotonic() - last_new < quiet_s:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for records in batch.values():
                for r in records:
                    rec = orjson.loads(r.value)
                    segment = str(rec.get("segment", ""))
                    if not (
                        rec.get("final")
                        and rec.get("metric") == "nps"
                        and rec.get("window") == window
                        and segment.startswith("channel=")
                    ):
                        continue
                    end = parse_ts(rec["window_end"])
                    assert end is not None
                    s = rec["stats"]
                    found[(segment.removeprefix("channel="), end)] = (
                        s["promoters"],
                        s["passives"],
                        s["detractors"],
                    )
                    last_new = time.monotonic()
    finally:
        await consumer.stop()
    return found


def run_cxpulse(
    name: str,
    broker: EmbeddedBroker,
    topic: str,
    workload: AnswerWorkload,
    log_dir: Path,
    *,
    count: int = 1,
    partitions: int = PARTITIONS,
) -> dict[str, Any]:
    """``count`` cxpulse workers (one group) on the topic, measured from outside.

    Events/s over their union and CPU summed over them (``benchmarks.throughput``);
    their final records verified.
    """
    windows, checked, size_min = CXPULSE[name]
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    topics = {**topic_names(tag), "survey": topic}
    others = {topics[f]: partitions for f in FAMILIES if f != "survey"}
    asyncio.run(ensure_topics(broker.bootstrap, others))
    env = {**worker_env(tag, broker.url, topics), "CXPULSE_TOPICS_PARTITIONS": str(partitions)}
    if windows is not None:
        env["CXPULSE_WINDOWS_LIST"] = orjson.dumps(windows).decode()
    workers = [
        Worker({**env, "CXPULSE_STORE_DATA_DIR": str(log_dir / f"{tag}-{i}")},
               log_dir / f"{tag}-{i}.log")
        for i in range(count)
    ]  # fmt: skip
    entry: dict[str, Any] = {"name": name, "computes": report.COMPUTES[name], "workers": count}
    expected = window_counts(workload.counts, size_min)
    try:
        for w in workers:
            w.start()
        figures = throughput.measure(workers, workload.answers)
        finals = asyncio.run(
            read_window_finals(
                broker.bootstrap, topics["kpi"], checked, len(expected), partitions=partitions
            )
        )
        rss = [peak_rss_mb(w.pid) for w in workers]
    except (RuntimeError, OSError, AssertionError, ValueError) as exc:  # reported; others run
        return {
            **entry,
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}"[:300],
            "log_tail": [line for w in workers for line in w.log_tail().splitlines()],
        }
    finally:
        for w in workers:
            w.stop()
    verification = report.verify_counts(expected, finals)
    verification["window"] = checked
    entry.update(
        status="ok" if verification["passed"] else "failed",
        reason=None if verification["passed"] else "; ".join(verification["problems"][:2]),
        events_per_s=figures["events_per_s"],
        cpu_us_per_event=figures["cpu_us_per_event"],
        peak_rss_mb=max(rss),
        peak_rss_by_worker_mb=rss,
        measured_s=figures["measured_s"],
        staggered_start=figures["staggered_start"],
        verification=verification,
    )
    return entry


def run_density(
    broker: EmbeddedBroker,
    workload: AnswerWorkload,
    contenders: Sequence[str],
    interpreters: Mapping[str, Path],
    skipped: Mapping[str, str],
    log_dir: Path,
    *,
    lateness_s: float,
    timeout_s: float,
    rounds: int = 1,
) -> dict[str, Any]:
    """Produce the workload to a fresh topic and run every contender on it, ``rounds``
    times, each round in its counterbalanced order (:func:`benchmarks.rounds.round_order`);
    ratios are taken within each round, then their medians."""
    topic = f"peers-answers-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(broker.bootstrap, {topic: PARTITIONS}))
    began = time.perf_counter()
    asyncio.run(produce_records(broker.bootstrap, {"survey": topic}, workload.records))
    results: list[dict[str, Any]] = []
    order = ((r, n) for r in range(1, rounds + 1) for n in round_order(contenders, r))
    for round_no, name in order:
        of = f", round {round_no} of {rounds}" if rounds > 1 else ""
        print(f"peers: density {workload.density:g}, {name}{of}…", flush=True)
        if name in skipped:
            results.append(
                {
                    "name": name,
                    "computes": report.COMPUTES[name],
                    "status": "skipped",
                    "reason": skipped[name],
                }
            )
        elif name in CXPULSE:
            results.append(run_cxpulse(name, broker, topic, workload, log_dir))
        else:
            results.append(
                run_peer(
                    name,
                    interpreters[name],
                    broker.bootstrap,
                    topic,
                    workload,
                    log_dir,
                    lateness_s=lateness_s,
                    timeout_s=timeout_s,
                )
            )
        last = results[-1]
        last["round"] = round_no
        if last["status"] == "failed":
            print(f"peers: {name} failed: {last.get('reason')}", flush=True)
            for line in last.get("log_tail") or []:
                print(f"  | {line}")
    for round_no in range(1, rounds + 1):
        report.add_ratios([c for c in results if c["round"] == round_no])
    return {
        "density": workload.density,
        "answers": workload.answers,
        "span_s": round(workload.span_s, 1),
        "jitter_ms": JITTER_MS,
        "partitions": PARTITIONS,
        "minute_keys": len(workload.counts),
        "produce_s": round(time.perf_counter() - began, 2),
        "contenders": results,
        "medians": report.medians(results) if rounds > 1 else None,
    }


def main(
    events: int = EVENTS,
    densities: Sequence[float] = DENSITIES,
    contenders: Sequence[str] = report.CONTENDERS,
    out: str = "benchmarks/results-peers.json",
    *,
    lateness_s: float = PEER_LATENESS_S,
    timeout_s: float = 1_800.0,
    rounds: int = 1,
) -> int:
    """Run every contender at every density (``rounds`` times each, round by round: a round
    is every contender once, in a counterbalanced order); 0 only if every one that ran was
    verified."""
    unknown = [c for c in contenders if c not in report.COMPUTES]
    if unknown:
        raise ValueError(f"unknown contenders {unknown}; known: {list(report.COMPUTES)}")
    interpreters: dict[str, Path] = {"raw": Path(sys.executable)}
    skipped: dict[str, str] = {}
    for name in contenders:
        if name in venvs.REQUIREMENTS:
            print(f"peers: the {name} venv ({' '.join(venvs.REQUIREMENTS[name])})…", flush=True)
            venv = venvs.ensure(name)
            if venv.python is None:
                skipped[name] = f"skipped: {venv.error}"
                print(f"peers: {name} SKIPPED: {venv.error}", flush=True)
            else:
                interpreters[name] = venv.python
    settings = {
        "events": events,
        "densities": list(densities),
        "contenders": list(contenders),
        "partitions": PARTITIONS,
        "jitter_ms": JITTER_MS,
        "peer_lateness_s": lateness_s,
        "window_ms": MINUTE_MS,
        "rounds": rounds,
        "requirements": {k: list(v) for k, v in venvs.REQUIREMENTS.items()},
    }
    started = time.monotonic()
    runs = []
    with (
        tempfile.TemporaryDirectory(prefix="cxpulse-peers-") as tmp,
        EmbeddedBroker(log_path=str(Path(tmp) / "tansu.log")) as broker,
    ):
        for density in densities:
            print(f"peers: generating {events:,} answers at {density:g}/s of event time…")
            workload = build(events, density)
            runs.append(
                run_density(
                    broker,
                    workload,
                    contenders,
                    interpreters,
                    skipped,
                    Path(tmp),
                    lateness_s=lateness_s,
                    timeout_s=timeout_s,
                    rounds=rounds,
                )
            )
    settings["duration_s"] = round(time.monotonic() - started, 1)
    doc = report.result(settings, runs)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    print(report.table(doc))
    print(f"written: {out}")
    return 0 if doc["verified"] else 1
