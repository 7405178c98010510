"""The pure parts of the peers' bench: the answer workload and its independent count, the
sliding-window sums the worker is checked on, the verification, the ratios, the table, the
peers' venvs and the command line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from benchmarks.peers import report, venvs
from benchmarks.peers.workload import (
    CLOSING_DELAY_MS,
    MINUTE_MS,
    build,
    category,
    rows_to_counts,
    window_counts,
)
from benchmarks.workloads import START_MS


def _load_peerlib() -> ModuleType:
    """The peer programs' own helper (stdlib only), loaded from its file as they import it."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "peerlib.py"
    spec = importlib.util.spec_from_file_location("peerlib", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["peerlib"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


peerlib = _load_peerlib()


def _decoded(records: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(r.partition, orjson.loads(r.value)) for r in records]


def test_the_workload_counts_what_it_produces() -> None:
    w = build(3_000, 28.0)
    answers = [ev for _, ev in _decoded(w.records) if ev["type"] == "answer"]
    assert len(answers) == w.answers == 3_000
    recount: dict[tuple[str, int], list[int]] = {}
    for ev in answers:
        cat = 0 if ev["score"] >= 9 else 1 if ev["score"] >= 7 else 2
        recount.setdefault((ev["channel"], ev["ts"] // MINUTE_MS), [0, 0, 0])[cat] += 1
    assert w.counts == {k: tuple(v) for k, v in recount.items()}
    assert len({ev["event_id"] for ev in answers}) == len({ev["response_id"] for ev in answers})
    assert len({ev["event_id"] for ev in answers}) == 3_000
    assert {ev["question"] for ev in answers} == {"nps"}
    assert len({ev["channel"] for ev in answers}) == 4
    assert len({ev["customer_id"] for ev in answers}) <= 5_000
    assert Counter(ev["score"] for ev in answers).keys() == set(range(11))


@pytest.mark.parametrize("density", [3.5, 28.0, 1_000.0])
def test_the_density_and_the_disorder(density: float) -> None:
    w = build(5_000, density, jitter_ms=30_000)
    answers = [(p, ev) for p, ev in _decoded(w.records) if ev["type"] == "answer"]
    for i, (_, ev) in enumerate(answers):
        assert abs(ev["ts"] - (START_MS + int(i * 1000 / density))) <= 30_000
    assert abs(w.span_s - 5_000 / density) <= 60 + 1 / density
    # within a partition, never more than twice the jitter behind the largest ts so far:
    # under cxpulse's default lateness (120 s), so no contender may drop an answer as late
    top: dict[int, int] = {}
    behind = 0
    for p, ev in answers:
        behind = max(behind, top.get(p, ev["ts"]) - ev["ts"])
        top[p] = max(top.get(p, ev["ts"]), ev["ts"])
    assert 0 < behind <= 60_000


def test_closing_heartbeats_come_last_on_every_partition_for_every_channel() -> None:
    w = build(2_000, 28.0, partitions=4)
    decoded = _decoded(w.records)
    beats = [(p, ev) for p, ev in decoded if ev["type"] == "heartbeat"]
    assert decoded[-len(beats) :] == beats
    assert {(p, ev["channel"]) for p, ev in beats} == {
        (p, c) for p in range(4) for c in ("web", "app", "email", "phone")
    }
    last = max(ev["ts"] for _, ev in decoded if ev["type"] == "answer")
    assert {ev["ts"] for _, ev in beats} == {last + CLOSING_DELAY_MS}


def test_records_are_keyed_by_customer_and_partitioned_stably() -> None:
    w = build(500, 28.0)
    where: dict[bytes | None, set[int]] = {}
    for r in w.records[: w.answers]:
        where.setdefault(r.key, set()).add(r.partition)
        assert r.key == orjson.loads(r.value)["customer_id"].encode()
    assert all(len(p) == 1 for p in where.values())
    assert build(500, 28.0).records == w.records  # the same seed, the same topic


def test_a_bad_density_or_channel_count_is_refused() -> None:
    with pytest.raises(ValueError, match="density"):
        build(10, 0.0)
    with pytest.raises(ValueError, match="channels"):
        build(10, 28.0, channels=9)


def test_the_categories_agree_with_the_peers() -> None:
    assert [category(s) for s in range(11)] == [peerlib.category(s) for s in range(11)]
    assert [category(s) for s in range(11)] == [2] * 7 + [1] * 2 + [0] * 2


def test_window_counts_sum_the_minutes_before_each_end() -> None:
    minutes = {("web", 10): (1, 0, 0), ("web", 12): (0, 2, 0), ("app", 10): (0, 0, 3)}
    one = window_counts(minutes, 1)
    assert one == {
        ("web", 11 * MINUTE_MS): (1, 0, 0),
        ("web", 13 * MINUTE_MS): (0, 2, 0),
        ("app", 11 * MINUTE_MS): (0, 0, 3),
    }
    three = window_counts(minutes, 3)
    assert three[("web", 13 * MINUTE_MS)] == (1, 2, 0)  # minutes 10, 11, 12
    assert three[("web", 11 * MINUTE_MS)] == (1, 0, 0)
    assert three[("web", 15 * MINUTE_MS)] == (0, 2, 0)  # minutes 12, 13, 14
    assert ("web", 16 * MINUTE_MS) not in three
    assert sum(v[2] for (c, _), v in three.items() if c == "app") == 9  # in 3 windows each


def test_window_counts_equal_a_brute_force_sum() -> None:
    w = build(4_000, 3.5)
    fifteen = window_counts(w.counts, 15)
    for (channel, end), got in list(fifteen.items())[:200]:
        first = end // MINUTE_MS - 15
        want = [0, 0, 0]
        for m in range(first, first + 15):
            for i, n in enumerate(w.counts.get((channel, m), (0, 0, 0))):
                want[i] += n
        assert got == tuple(want)


def test_a_peers_rows_become_counts() -> None:
    rows = [["web", 5, 1, 2, 3], ["web", 5, 1, 0, 0], ["app", 6, 0, 0, 1]]
    assert rows_to_counts(rows) == {("web", 5): (2, 2, 3), ("app", 6): (0, 0, 1)}


def test_verification_passes_only_on_the_same_counts_for_the_same_keys() -> None:
    want = {("web", 1): (1, 2, 3), ("app", 1): (0, 0, 1)}
    ok = report.verify_counts(want, dict(want))
    assert ok["passed"] and ok["answers"] == 7 and ok["problems"] == []
    off_by_one = report.verify_counts(want, {("web", 1): (1, 2, 4), ("app", 1): (0, 0, 1)})
    assert not off_by_one["passed"]
    assert off_by_one["problems"] == ["web 1: counted [1, 2, 4], expected [1, 2, 3]"]
    missing = report.verify_counts(want, {("web", 1): (1, 2, 3)})
    assert not missing["passed"] and missing["mismatches"] == 1
    extra = report.verify_counts(want, {**want, ("web", 2): (0, 1, 0)})
    assert not extra["passed"]
    assert report.verify_counts(want, {**want, ("web", 2): (0, 0, 0)})["passed"]  # empty: none
    nothing = report.verify_counts({}, {})
    assert not nothing["passed"] and nothing["problems"]


def test_at_most_a_few_problems_are_listed() -> None:
    want = {("web", m): (1, 0, 0) for m in range(50)}
    res = report.verify_counts(want, {})
    assert res["mismatches"] == 50 and len(res["problems"]) == report.SHOWN_PROBLEMS


def _contender(name: str, rate: float | None, status: str = "ok") -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "events_per_s": rate,
        "cpu_us_per_event": 2.0,
        "peak_rss_mb": 50.0,
        "reason": None if status == "ok" else f"{name}: {status}",
    }


def test_ratios_are_to_bytewax_and_to_raw_of_the_same_run() -> None:
    runs = [
        _contender("raw", 400.0),
        _contender("cxpulse", 100.0),
        _contender("bytewax", 200.0),
        _contender("quix", 50.0, "failed"),
        _contender("faust", None, "skipped"),
    ]
    report.add_ratios(runs)
    by = {c["name"]: c for c in runs}
    assert by["cxpulse"]["ratio_to_bytewax"] == 0.5 and by["cxpulse"]["ratio_to_raw"] == 0.25
    assert by["raw"]["ratio_to_raw"] == 1.0 and by["bytewax"]["ratio_to_bytewax"] == 1.0
    assert by["quix"]["ratio_to_bytewax"] is None  # a failed contender has no figure to compare
    assert by["faust"]["ratio_to_raw"] is None
    without = [_contender("raw", 400.0), _contender("bytewax", 0.0, "skipped")]
    report.add_ratios(without)
    assert without[0]["ratio_to_bytewax"] is None


def _doc(contenders: list[dict[str, Any]]) -> dict[str, Any]:
    report.add_ratios(contenders)
    run = {
        "density": 28.0,
        "answers": 200_000,
        "span_s": 7_142.9,
        "jitter_ms": 30_000,
        "partitions": 4,
        "contenders": contenders,
    }
    return report.result({"events": 200_000}, [run])


def test_the_document_and_the_table() -> None:
    doc = _doc(
        [
            _contender("raw", 400_000.0),
            _contender("cxpulse", 100_000.0),
            _contender("bytewax", 200_000.0),
            _contender("faust", None, "skipped"),
        ]
    )
    assert doc["verified"] and doc["skipped"] == ["faust"]
    assert doc["schema_version"] == report.SCHEMA_VERSION and doc["machine"]["cpus"]
    text = report.table(doc)
    assert "density 28 answers per second of event time" in text
    assert "±30 s out of order" in text
    row = next(line for line in text.splitlines() if line.startswith("cxpulse "))
    assert "100,000" in row and "0.50" in row and "0.25" in row and row.endswith("yes")
    assert any(line.startswith("faust") and line.endswith("skipped") for line in text.splitlines())
    assert f"  bytewax: {report.COMPUTES['bytewax']}" in text
    assert "verified against independent counts: yes; skipped: faust" in text


def test_rounds_take_each_ratio_within_its_round_then_the_medians() -> None:
    rates = [(400.0, 100.0, 200.0), (200.0, 100.0, 100.0), (300.0, 150.0, 100.0)]
    contenders: list[dict[str, Any]] = []
    for round_no, (raw, cx, bw) in enumerate(rates, start=1):
        run = [_contender("raw", raw), _contender("cxpulse", cx), _contender("bytewax", bw)]
        for c in run:
            c["round"] = round_no
        report.add_ratios(run)
        contenders += run
    contenders[-2]["peak_rss_mb"] = 70.0
    by = {m["name"]: m for m in report.medians(contenders)}
    cx = by["cxpulse"]
    assert cx["rounds"] == 3 and cx["status"] == "ok"
    assert cx["events_per_s"] == 100.0 and cx["peak_rss_mb"] == 50.0
    assert cx["peak_rss_mb_max"] == 70.0
    # within each round 0.25, 0.5, 0.5 of raw: not 100 / 300 (the medians' ratio)
    assert cx["ratio_to_raw"] == 0.5 and cx["ratio_to_raw_range"] == [0.25, 0.5]
    assert cx["ratio_to_bytewax"] == 1.0 and cx["ratio_to_bytewax_range"] == [0.5, 1.5]
    assert by["raw"]["events_per_s"] == 300.0
    even = report.medians(contenders[:6])  # two rounds: the mean of the middle two
    assert next(m for m in even if m["name"] == "raw")["events_per_s"] == 300.0
    contenders[4]["status"] = "failed"
    failed = {m["name"]: m for m in report.medians(contenders)}["cxpulse"]
    assert failed["status"] == "failed" and failed["ratio_to_raw_range"] == [0.25, 0.5]
    run = {"density": 1000.0, "answers": 9, "span_s": 9.0, "jitter_ms": 0, "partitions": 4}
    doc = report.result(
        {}, [{**run, "contenders": contenders, "medians": report.medians(contenders)}]
    )
    text = report.table(doc)
    assert "cxpulse #3" in text and "median of 3 rounds" in text
    row = next(line for line in text.splitlines() if line.startswith("cxpulse ") and "×raw" in line)
    assert "NO" in row and "×raw 0.25-0.50" in row and "peak RSS max 70 MB" in row


def test_a_failed_contender_fails_the_run_and_says_why() -> None:
    doc = _doc([_contender("raw", 400_000.0), _contender("quix", 9.0, "failed")])
    assert not doc["verified"]
    text = report.table(doc)
    assert "quix: failed" in text and "verified against independent counts: NO" in text


def test_a_venv_with_the_same_requirements_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = tmp_path / "bytewax" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    marker = tmp_path / "bytewax" / "cxpulse-bench-requirements.txt"
    marker.write_text(venvs.marker_text(venvs.REQUIREMENTS["bytewax"]))

    def no_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a fresh venv was made")

    monkeypatch.setattr(venvs.subprocess, "run", no_run)
    assert venvs.ensure("bytewax", tmp_path) == venvs.Venv(python)


def test_a_failed_install_skips_the_peer_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "quix" / "cxpulse-bench-requirements.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("quixstreams==0.0.1\n")  # other requirements: made afresh
    calls: list[list[str]] = []

    def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        if "pip" in cmd:
            return subprocess.CompletedProcess(
                cmd, 1, "", "ERROR: No matching distribution found for quixstreams==3.28.1\n"
            )
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(venvs.subprocess, "run", run)
    venv = venvs.ensure("quix", tmp_path)
    assert venv.python is None and venv.error is not None
    assert "No matching distribution" in venv.error and "quixstreams==3.28.1" in venv.error
    assert [c[1:3] for c in calls] == [["-m", "venv"], ["-m", "pip"]]
    assert not (tmp_path / "quix").exists()  # nothing half-made is reused next time


def test_bench_takes_the_peers_and_their_contenders(capsys: pytest.CaptureFixture[str]) -> None:
    from cxpulse.agents.cli import build_parser

    args = build_parser().parse_args(["bench", "--peers", "--contenders", "raw,cxpulse"])
    assert args.peers and args.contenders == ("raw", "cxpulse")
    assert build_parser().parse_args(["bench"]).contenders == report.CONTENDERS
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["bench", "--peers", "--contenders", "raw,flink"])
    assert exit_info.value.code == 2 and "--contenders" in capsys.readouterr().err


def test_the_peers_command_takes_rounds(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.peers.__main__ import parse

    assert parse(["--repeat", "3"]).repeat == 3 and parse([]).repeat == 1
    with pytest.raises(SystemExit) as exit_info:
        parse(["--repeat", "0"])
    assert exit_info.value.code == 2 and "--repeat" in capsys.readouterr().err
