"""The pure parts of ``cxpulse bench``: percentiles, marker latencies, the drain's timing,
the independent counts (checked against the test oracle), the verification, and the
result's shape."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import Counter
from typing import Any

import orjson
import pytest

from benchmarks import report
from benchmarks.engine import batches
from benchmarks.expected import (
    DAY0,
    WINDOW,
    WINDOW_END_MS,
    IndependentCounts,
    verify,
)
from benchmarks.kafka_io import is_checked_final
from benchmarks.latency import MARKER_SHARE, _send_paced, marker_latencies, percentile, summarize
from benchmarks.peers.workload import build as answers
from benchmarks.run import add_round
from benchmarks.throughput import FINE_POLL_S, Sample, crossing, drain_figures, next_poll_s
from benchmarks.workers import parse_event_counts
from benchmarks.workloads import (
    PARTITIONS,
    START_MS,
    STEP_MS,
    build,
    encode,
    mixed_events,
    step_for,
    survey_events,
)
from cxpulse.agents.worker.runtime import Runtime
from cxpulse.schemas.timestamps import format_ts
from cxpulse.streams.settings import load_settings
from tests.oracle import cart_finals, survey_finals, ticket_finals

DAY = 86_400_000
MIN = 60_000
WINDOWS = [(WINDOW, 30 * DAY, DAY)]


@pytest.mark.parametrize(
    ("values", "q", "want"),
    [
        (list(range(1, 101)), 0.5, 50),
        (list(range(1, 101)), 0.99, 99),
        (list(range(1, 101)), 1.0, 100),
        (list(range(100, 0, -1)), 0.5, 50),  # order of the input does not matter
        ([7.0], 0.5, 7.0),
        ([7.0], 0.99, 7.0),
        ([1, 2], 0.5, 1),  # nearest rank: ceil(0.5 * 2) = 1st
        ([1, 2, 3], 0.5, 2),
        ([1, 2, 3], 0.0, 1),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, want: float) -> None:
    assert percentile(values, q) == want


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_a_marker_is_placed_between_the_previous_round_start_and_its_round_end() -> None:
    # rounds: (start, end, duplicates counted); the first is the baseline
    rounds = [(0.0, 0.05, 3.0), (0.10, 0.15, 3.0), (0.20, 0.26, 5.0), (0.30, 0.34, 6.0)]
    produced = [0.02, 0.12, 0.25, 0.31]
    got = marker_latencies(produced, rounds)
    assert len(got) == 3  # the 4th marker was never counted
    # marker 1: produced 0.02, seen in round 2 (count 5 - 3 >= 1): after 0.10, by 0.26
    assert got[0] == pytest.approx(((0.10 + 0.26) / 2 - 0.02, 0.26 - 0.10))
    # marker 2: produced 0.12, after the previous round started: from 0.12 to 0.26
    assert got[1] == pytest.approx(((0.12 + 0.26) / 2 - 0.12, 0.26 - 0.12))
    # marker 3: produced 0.25 (during round 2), seen in round 3: from 0.25 to 0.34
    assert got[2] == pytest.approx(((0.25 + 0.34) / 2 - 0.25, 0.34 - 0.25))


def test_marker_latencies_without_rounds_or_markers() -> None:
    assert marker_latencies([0.1], []) == []
    assert marker_latencies([], [(0.0, 0.1, 0.0), (0.2, 0.3, 0.0)]) == []


def test_summary_has_figures_only_when_every_marker_was_seen() -> None:
    lat = [(i / 1000, 0.1) for i in range(1, 101)]
    full = summarize(lat, 100)
    assert (full["p50_ms"], full["p99_ms"], full["max_ms"]) == (50.0, 99.0, 100.0)
    assert full["resolution_ms"] == {"median": 100.0, "max": 100.0}
    partial = summarize(lat, 101)
    assert partial["p50_ms"] is None and partial["p99_ms"] is None
    assert partial["seen"] == 100 and partial["markers"] == 101
    assert summarize([], 0)["p50_ms"] is None


def test_the_trend_shows_a_queue_that_grows() -> None:
    # latency grows with the produce time: the workers fell behind
    lat = [(0.1 + i / 100, 0.1) for i in range(100)]
    trend = summarize(lat, 100, [float(i) for i in range(100)])["trend_ms"]
    assert trend == {"first_tenth_p50": 140.0, "last_tenth_p50": 1040.0}
    # the same latencies listed in another order: the produce times decide
    rev = summarize(lat[::-1], 100, [float(i) for i in range(99, -1, -1)])["trend_ms"]
    assert rev == trend
    assert summarize(lat, 100)["trend_ms"] is None


def test_the_drain_end_is_interpolated_between_scrapes() -> None:
    before, after = Sample(10.0, 800.0, 5.0), Sample(10.5, 1200.0, 5.4)
    assert crossing(before, after, 1000.0) == pytest.approx(10.25)
    assert crossing(after, after, 1200.0) == 10.5
    start = Sample(8.0, 0.0, 3.0)
    figures = drain_figures(start, before, after, 1000.0)
    assert figures["events_per_s"] == pytest.approx(1000 / 2.25)
    assert figures["cpu_us_per_event"] == pytest.approx(2.4 / 1200 * 1e6)
    assert figures["measured_events"] == 1000


def test_scrapes_come_faster_as_the_drain_nears_its_end() -> None:
    start = Sample(0.0, 0.0, 0.0)
    # 100k events/s so far: 800k left is 8 s away, 100k left 1 s, 40k 0.4 s, 1k 10 ms
    assert next_poll_s(start, Sample(1.0, 100_000.0, 1.0), 900_000.0, 0.5) == 0.5
    assert next_poll_s(start, Sample(1.0, 100_000.0, 1.0), 200_000.0, 0.5) == 0.5
    assert next_poll_s(start, Sample(1.0, 100_000.0, 1.0), 140_000.0, 0.5) == pytest.approx(0.2)
    assert next_poll_s(start, Sample(1.0, 100_000.0, 1.0), 101_000.0, 0.5) == FINE_POLL_S
    # nothing counted since the start yet: no rate to go by
    assert next_poll_s(start, Sample(1.0, 0.0, 1.0), 1000.0, 0.5) == 0.5


def test_event_counts_are_read_from_an_exposition() -> None:
    text = "\n".join(
        [
            "# HELP cx_events_total Input records by outcome (heartbeats not counted)",
            "# TYPE cx_events_total counter",
            'cx_events_total{outcome="accepted",topic="s-1"} 1234.0',
            'cx_events_total{outcome="duplicate",topic="s-1"} 7.0',
            'cx_events_total{outcome="accepted",topic="c-1"} 1e+06',
            'cx_events_created{outcome="accepted",topic="s-1"} 1.7e+09',
            'cx_nps_score{channel="all",window="1h/1m"} 12.5',
        ]
    )
    assert parse_event_counts(text) == {
        ("s-1", "accepted"): 1234.0,
        ("s-1", "duplicate"): 7.0,
        ("c-1", "accepted"): 1e6,
    }


def _cart(cart: str, kind: str, ts: int, value: float = 10.0, channel: str = "web") -> Any:
    return {"type": kind, "cart_id": cart, "ts": ts, "cart_value": value, "channel": channel}


@pytest.mark.parametrize(
    ("events", "want"),
    [
        # bought in the session: converted
        ([("a", "item_added", 0), ("a", "purchased", 5 * MIN)], (0, 1, 0)),
        # left: abandoned once the closing heartbeat passes its deadline
        ([("a", "item_added", 0)], (1, 0, 0)),
        # an event at exactly last + 30 min comes after the abandonment: a new session
        ([("a", "item_added", 0), ("a", "item_added", 30 * MIN)], (2, 0, 0)),
        # a purchase within 7 days of the abandonment: a recovery, no conversion
        ([("a", "item_added", 0), ("a", "purchased", 3 * DAY)], (1, 0, 1)),
        # two purchases after an abandonment: the last session stays abandoned
        (
            [("a", "item_added", 0), ("a", "purchased", DAY), ("a", "purchased", 2 * DAY)],
            (1, 0, 2),
        ),
        # later than the recovery window: a new session that converts
        ([("a", "item_added", 0), ("a", "purchased", 8 * DAY)], (1, 1, 0)),
        # browsing after an abandonment opens a new session; it converts
        (
            [("a", "item_added", 0), ("a", "item_added", DAY), ("a", "purchased", DAY + MIN)],
            (1, 1, 0),
        ),
    ],
)
def test_cart_sessions(events: list[tuple[str, str, int]], want: tuple[int, int, int]) -> None:
    counts = IndependentCounts()
    for cart, kind, ts in events:
        counts.add(_cart(cart, kind, ts))
    counts.finish()
    assert (counts.abandoned, counts.converted, counts.recovered) == want


def _oracle_record(finals: dict[Any, Any], metric: str) -> dict[str, Any]:
    value, n, stats = finals[(metric, WINDOW, "all", WINDOW_END_MS)]
    return {"metric": metric, "value": value, "n": n, "stats": stats}


@pytest.mark.parametrize("step_ms", [STEP_MS, 3.0])
def test_survey_counts_equal_the_oracles_nps(step_ms: float) -> None:
    events = list(itertools.islice(survey_events(seed=3, step_ms=step_ms), 3000))
    counts = IndependentCounts()
    for ev in events:
        counts.add(ev)
    counts.finish()
    oracle = survey_finals(events, WINDOWS)
    result = verify(counts.expected(("survey",)), {"nps": _oracle_record(oracle, "nps")})
    assert result["passed"], result["problems"]


@pytest.mark.parametrize(("step_ms", "n"), [(STEP_MS, 6000), (40.0, 30_000)])
def test_mixed_counts_equal_the_oracles_cart_and_ticket_records(step_ms: float, n: int) -> None:
    # dense: ~25 journeys start per second of event time, so many more carts and tickets
    # are open at once (enough events that some carts reached their purchase)
    events = list(itertools.islice(mixed_events(seed=3, step_ms=step_ms), n))
    counts = IndependentCounts()
    for ev in events:
        counts.add(ev)
    counts.finish()
    carts = [e for e in events if "cart_id" in e]
    tickets = [e for e in events if "ticket_id" in e]
    sla = {"urgent": 3_600_000, "high": 4 * 3_600_000, "normal": 8 * 3_600_000, "low": DAY}
    oracle = {
        **survey_finals([e for e in events if "survey_id" in e], WINDOWS),
        **cart_finals(carts, WINDOWS),
        **ticket_finals(tickets, WINDOWS, sla),
    }
    expected = counts.expected(("survey", "cart", "ticket"))
    assert set(expected) == {"nps", "cart_abandonment", "tickets_created", "ticket_complaints"}
    assert counts.abandoned and counts.converted and counts.created and counts.complaints
    result = verify(expected, {m: _oracle_record(oracle, m) for m in expected})
    assert result["passed"], result["problems"]


def test_every_event_of_a_workload_falls_in_the_verified_window() -> None:
    wl = build("mixed", 4000, 1000)
    assert len(wl.backlog) == 4000 and len(wl.paced) == 1000
    assert wl.families == ("survey", "cart", "ticket")
    times = [orjson.loads(r.value)["ts"] for r in wl.backlog + wl.paced]
    assert times == sorted(times), "released in event-time order: nothing is late"
    assert DAY0 <= times[0] and times[-1] < WINDOW_END_MS - 8 * DAY  # room for recoveries
    assert {r.partition for r in wl.backlog} == set(range(PARTITIONS))
    assert sum(wl.by_family.values()) == 5000


@pytest.mark.parametrize(
    ("name", "rate", "span_s", "settle_s"),
    [("survey", 20.0, 900, 180), ("survey", 100.0, 900, 180), ("mixed", 3.0, 14_400, 3_600)],
)
def test_a_workload_has_the_asked_events_per_second_of_event_time(
    name: str, rate: float, span_s: int, settle_s: int
) -> None:
    # once the journeys started at the beginning are under way (answers come 5-120 s
    # after an invitation, a cart's purchase or return up to hours later), the stream
    # runs at the asked density
    backlog = build(name, int(rate * span_s), 0, event_time_rate=rate).backlog
    times = [orjson.loads(r.value)["ts"] for r in backlog]
    settled = START_MS + settle_s * 1000
    steady = [t for t in times if t >= settled]
    assert len(steady) > len(times) / 2
    measured = len(steady) / ((times[-1] - settled) / 1000)
    assert rate * 0.95 < measured < rate * 1.05, measured


def test_the_density_only_spaces_the_steps() -> None:
    assert step_for("survey", 20.0) == pytest.approx(step_for("survey", 10.0) / 2)
    sparse, dense = build("survey", 2000, 0, event_time_rate=3.5), build("survey", 2000, 0)
    assert dense.event_time_span_s < sparse.event_time_span_s / 50
    # the same journeys start, in the same order, only closer together in event time
    invitations = [
        [(e["event_id"], e["customer_id"], e["channel"]) for e in events if e["type"] != "answer"]
        for events in ([orjson.loads(r.value) for r in w.backlog] for w in (sparse, dense))
    ]
    shorter = min(len(i) for i in invitations)
    assert shorter > 500 and invitations[0][:shorter] == invitations[1][:shorter]
    with pytest.raises(ValueError):
        step_for("mixed", 0.0)


def test_records_are_keyed_by_entity_and_partitioned_stably() -> None:
    ev = {"type": "item_added", "cart_id": "cart-1", "ts": 1, "cart_value": 1.0}
    a, b = encode(ev), encode(dict(ev))
    assert a == b and a.family == "cart" and a.key == b"cart-1"
    assert encode({"type": "created", "ticket_id": "t-9", "ts": 1}).family == "ticket"
    assert encode({"type": "answer", "customer_id": "c1", "ts": 1}).key == b"c1"


def _nps_record(**over: Any) -> dict[str, Any]:
    rec = {"value": 10.0, "n": 10, "stats": {"promoters": 3, "passives": 5, "detractors": 2}}
    rec.update(over)
    return rec


def test_verification_fails_on_a_wrong_or_missing_figure() -> None:
    want = {"nps": _nps_record()}
    assert verify(want, {"nps": _nps_record()})["passed"]
    # within float rounding passes; one count off fails and says where
    assert verify(want, {"nps": _nps_record(value=10.0 + 1e-12)})["passed"]
    wrong = verify(want, {"nps": _nps_record(stats={"promoters": 4, "passives": 4})})
    assert not wrong["passed"]
    assert any("promoters" in p for p in wrong["problems"])
    assert any("detractors" in p for p in wrong["problems"])  # absent from the record
    missing = verify(want, {})
    assert not missing["passed"] and "no final" in missing["problems"][0]
    assert not verify({}, {})["passed"], "nothing verified is not a pass"
    assert not verify(
        {"tickets_created": {"value": 3, "n": 3, "stats": {}}},
        {"tickets_created": {"value": 3.5, "n": 3, "stats": {}}},
    )["passed"]


def test_only_the_verified_windows_final_records_are_picked() -> None:
    rec = {
        "metric": "nps",
        "window": WINDOW,
        "segment": "all",
        "final": True,
        "window_end": format_ts(WINDOW_END_MS),
    }
    assert is_checked_final(rec)
    assert not is_checked_final({**rec, "final": False})
    assert not is_checked_final({**rec, "segment": "channel=web"})
    assert not is_checked_final({**rec, "window": "7d/1h"})
    assert not is_checked_final({**rec, "window_end": format_ts(WINDOW_END_MS - DAY)})


def _run(workers: int, **over: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "workers": workers,
        "events_per_s": 30_000.0,
        "ratio_to_ceiling": 0.15,
        "cpu_us_per_event": 33.3,
        "peak_rss_mb": [100.0] * workers,
        "latency": {"p50_ms": 120.0, "p99_ms": 450.0},
        "verification": {"passed": True, "checks": {}, "problems": []},
    }
    run.update(over)
    return run


def _workloads(**runs_over: Any) -> dict[str, Any]:
    return {
        name: {
            "events": 1000,
            "ceiling": {"events_per_s": 200_000.0, "cpu_us_per_event": 5.0},
            "runs": [_run(1), _run(2, **runs_over)],
        }
        for name in ("survey", "mixed")
    }


def test_result_document_shape_and_table() -> None:
    doc = report.result({"events": 1000}, _workloads())
    assert doc["schema_version"] == 1
    assert doc["verified"] and doc["complete"] and doc["missing"] == []
    assert set(doc) >= {"machine", "settings", "workloads"}
    assert orjson.loads(orjson.dumps(doc)) == doc  # plain JSON
    lines = report.table(doc).splitlines()
    assert lines[0].split()[:3] == ["workload", "consumer", "events/s"]
    assert sum("raw aiokafka" in line for line in lines) == 2
    assert sum("cxpulse, 1 worker " in line for line in lines) == 2
    assert sum("cxpulse, 2 workers" in line for line in lines) == 2
    assert any("100 / 100" in line for line in lines)
    assert lines[-1].startswith("verified against independent counts: yes")


def test_a_failed_verification_or_a_missing_figure_shows() -> None:
    failed = report.result({}, _workloads(verification={"passed": False}))
    assert not failed["verified"] and failed["complete"]
    assert " NO" in report.table(failed).splitlines()[4]
    no_latency = report.result({}, _workloads(latency={"p50_ms": None, "p99_ms": 3.0}))
    assert not no_latency["complete"]
    assert "survey/2 worker(s).latency.p50_ms" in no_latency["missing"]
    no_rss = report.result({}, _workloads(peak_rss_mb=[]))
    assert "mixed/2 worker(s).peak_rss_mb" in no_rss["missing"]
    nan = report.result({}, _workloads(events_per_s=math.nan))
    assert "mixed/2 worker(s).events_per_s" in nan["missing"]
    assert not report.result({}, {})["verified"]


def test_the_table_says_when_workers_fell_behind_the_paced_stream() -> None:
    trend = {"first_tenth_p50": 100.0, "last_tenth_p50": 900.0}
    behind = {"p50_ms": 1.0, "p99_ms": 2.0, "trend_ms": trend}
    text = report.table(report.result({}, _workloads(latency=behind)))
    assert "mixed, 2 worker(s): fell behind the paced stream" in text
    assert "1 worker(s): fell behind" not in text


def test_the_table_says_when_the_producer_did_not_keep_the_pace() -> None:
    slow = {
        "p50_ms": 1.0,
        "p99_ms": 2.0,
        "target_rate_per_s": 50_000.0,
        "achieved_rate_per_s": 26_000.0,
    }
    text = report.table(report.result({}, _workloads(latency=slow)))
    assert "mixed, 2 worker(s): the producer did not keep the pace (26,000 of 50,000" in text
    kept = {**slow, "achieved_rate_per_s": 49_000.0}
    assert "did not keep the pace" not in report.table(report.result({}, _workloads(latency=kept)))


class _CountingProducer:
    """Stands in for the aiokafka producer: records what was sent, to which topic."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, topic: str, value: bytes, **kw: Any) -> None:
        self.sent.append(topic)


def test_a_paced_stream_slower_than_the_markers_still_sends_every_event() -> None:
    """At 100 events/s three topics' 10 ms markers alone would be 300/s: the events must
    still go out (otherwise a low 2-worker rate leaves the bench sending markers forever)."""
    workload = build("mixed", 60, 0)
    topics = {family: family for family in ("survey", "cart", "ticket")}
    producer = _CountingProducer()
    produced: dict[str, list[float]] = {}
    sent, markers = asyncio.run(
        asyncio.wait_for(
            _send_paced(producer, topics, workload.backlog, 100.0, 0.01, produced),  # type: ignore[arg-type]
            timeout=10,
        )
    )
    assert sent == len(workload.backlog) == 60
    assert len(producer.sent) == sent + markers
    assert markers <= MARKER_SHARE * (sent + markers) + 3  # one round of markers over


@pytest.mark.parametrize(
    ("option", "value"),
    [
        *(("--event-time-rate", rate) for rate in ["0", "-5", "inf", "nan", "fast"]),
        *(("--repeat", rounds) for rounds in ["0", "-1", "two", "1.5"]),
    ],
)
def test_bench_refuses_a_density_or_rounds_out_of_range(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The density must be a positive rate, the rounds a positive whole number."""
    from cxpulse.agents.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["bench", option, value])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err


def test_bench_takes_the_density() -> None:
    from cxpulse.agents.cli import build_parser

    args = build_parser().parse_args(["bench", "--event-time-rate", "3.5"])
    assert args.event_time_rate == 3.5
    assert build_parser().parse_args(["bench"]).event_time_rate == 1_000.0


def test_bench_takes_the_paced_share() -> None:
    from cxpulse.agents.cli import build_parser

    assert build_parser().parse_args(["bench"]).paced_share == 0.5
    assert build_parser().parse_args(["bench", "--paced-share", "0.2"]).paced_share == 0.2


def test_the_engine_bench_runs_the_peers_answers_through_the_source_stage() -> None:
    """``python -m benchmarks.engine answers``: every answer accepted, once, in 1m/1m buckets."""
    work = batches("answers", 2_000, size=500, event_time_rate=28)
    workload = answers(2_000, 28)
    assert sum(len(recs) for _, _, recs in work) == len(workload.records)
    assert {family for family, _, _ in work} == {"survey"}
    assert all(len(recs) <= 500 for _, _, recs in work)
    for _, _, recs in work:  # in order within each partition, as a consumer hands them
        assert [r.offset for r in recs] == sorted(r.offset for r in recs)
    runtime = Runtime(load_settings(env={"CXPULSE_WINDOWS_LIST": '["1m/1m"]'}), "partials")
    outcomes: Counter[str] = Counter()
    for family, partition, recs in work:
        outcomes.update(runtime.process_source(family, partition, recs, {}).outcomes)
    assert outcomes == {"accepted": 2_000}  # the heartbeats count nowhere


def _rounds(per_round: list[dict[str, tuple[float, float, float]]]) -> dict[str, Any]:
    """Workloads of several rounds, folded as ``cxpulse bench --repeat`` folds them:
    ``per_round[i][name]`` = (events/s, CPU µs/event, peak RSS MB) of 1 worker."""
    results: dict[str, Any] = {}
    for number, figures in enumerate(per_round, 1):
        for name, (rate, cpu, rss) in figures.items():
            ceiling = {"events_per_s": 100_000.0 * number, "cpu_us_per_event": 4.0}
            run = _run(1, events_per_s=rate, cpu_us_per_event=cpu, peak_rss_mb=[rss])
            add_round(results, name, number, {"events": 1000, "ceiling": ceiling, "runs": [run]})
    return results


def test_rounds_are_folded_into_one_result_per_workload() -> None:
    results = _rounds([{"survey": (100.0, 5.0, 150.0)}, {"survey": (90.0, 5.5, 160.0)}])
    survey = results["survey"]
    assert [run["round"] for run in survey["runs"]] == [1, 2]
    assert [c["events_per_s"] for c in survey["ceilings"]] == [100_000.0, 200_000.0]
    assert survey["ceiling"] == survey["ceilings"][0]


def test_the_summary_gives_medians_ranges_and_mixed_against_survey_within_each_round() -> None:
    workloads = _rounds(
        [
            {"survey": (100.0, 5.0, 150.0), "mixed": (80.0, 6.0, 190.0)},
            {"survey": (120.0, 4.0, 170.0), "mixed": (84.0, 5.0, 210.0)},
            {"survey": (90.0, 6.0, 160.0), "mixed": (81.0, 8.0, 180.0)},
        ]
    )
    doc = report.result({"rounds": 3}, workloads)
    assert doc["verified"] and doc["complete"]
    runs = {row["workload"]: row for row in doc["summary"]["runs"]}
    assert runs["survey"]["events_per_s"] == {"median": 100.0, "min": 90.0, "max": 120.0}
    assert runs["mixed"]["cpu_us_per_event"] == {"median": 6.0, "min": 5.0, "max": 8.0}
    assert runs["mixed"]["peak_rss_mb"] == {"median": 190.0, "min": 180.0, "max": 210.0}
    (ratio,) = doc["summary"]["mixed_to_survey"]
    # within each round, not the median of one over the median of the other (0.81)
    assert ratio["events_per_s"]["per_round"] == pytest.approx([0.8, 0.7, 0.9])
    assert ratio["events_per_s"]["median"] == pytest.approx(0.8)
    assert ratio["by_cpu"]["per_round"] == pytest.approx([5 / 6, 0.8, 0.75])
    lines = report.table(doc).splitlines()
    assert sum("raw aiokafka" in line for line in lines) == 6
    assert sum(line.startswith("round 3") for line in lines) == 2
    assert any(
        line.startswith("survey, 1 worker (3 rounds): 100 (90-120) events/s") for line in lines
    )
    assert any("mixed ÷ survey, 1 worker" in line and "0.80 (0.70-0.90)" in line for line in lines)


def test_a_round_without_a_rate_is_left_out_of_the_ratios() -> None:
    workloads = _rounds(
        [
            {"survey": (100.0, 5.0, 150.0), "mixed": (80.0, 6.0, 190.0)},
            {"survey": (120.0, 4.0, 170.0), "mixed": (84.0, 5.0, 210.0)},
        ]
    )
    workloads["mixed"]["runs"][1]["events_per_s"] = None  # drained between two scrapes
    doc = report.result({}, workloads)
    (ratio,) = doc["summary"]["mixed_to_survey"]
    assert ratio["rounds"] == [1] and ratio["events_per_s"]["per_round"] == [0.8]
    mixed = next(row for row in doc["summary"]["runs"] if row["workload"] == "mixed")
    assert "events_per_s" not in mixed and "cpu_us_per_event" in mixed
    assert "mixed, 1 worker (2 rounds): - events/s" in report.table(doc)


def test_one_round_has_no_summary() -> None:
    doc = report.result({}, _rounds([{"survey": (100.0, 5.0, 150.0)}]))
    assert "summary" not in doc
    assert "median" not in report.table(doc)


def test_a_failed_run_names_its_round() -> None:
    workloads = _rounds([{"survey": (100.0, 5.0, 150.0)}, {"survey": (90.0, 5.5, 160.0)}])
    workloads["survey"]["runs"][1]["verification"] = {"passed": False}
    doc = report.result({}, workloads)
    assert not doc["verified"]
    assert (
        report.run_name("survey", workloads["survey"]["runs"][1]) == "survey, 1 worker(s), round 2"
    )
    assert report.run_name("survey", workloads["survey"]["runs"][0]) == "survey, 1 worker(s)"
    workloads["survey"]["runs"][1]["latency"] = {"p50_ms": None, "p99_ms": 3.0}
    assert report.missing_figures(workloads) == ["survey/1 worker(s)/round 2.latency.p50_ms"]
    missing = report.result({}, _rounds([{"survey": (100.0, 5.0, 150.0)}] * 2))
    missing["workloads"]["survey"]["ceilings"][1] = {}
    assert report.missing_figures(missing["workloads"]) == [
        "survey/ceiling.events_per_s",
        "survey/ceiling.cpu_us_per_event",
    ]


def test_bench_takes_the_rounds() -> None:
    from cxpulse.agents.cli import build_parser

    assert build_parser().parse_args(["bench"]).repeat == 1
    assert build_parser().parse_args(["bench", "--repeat", "3"]).repeat == 3


def test_a_drain_without_a_latency_phase_is_complete() -> None:
    """``--paced-events 0`` asks for no latency phase: its absent figures are not missing,
    and every other figure still is."""
    workloads = _rounds([{"survey": (100.0, 5.0, 150.0)}])
    del workloads["survey"]["runs"][0]["latency"]
    assert report.result({"paced_events": 0}, workloads)["complete"]
    assert report.result({"paced_events": 1000}, workloads)["missing"] == [
        "survey/1 worker(s).latency.p50_ms",
        "survey/1 worker(s).latency.p99_ms",
    ]
    workloads["survey"]["runs"][0]["cpu_us_per_event"] = None
    assert report.result({"paced_events": 0}, workloads)["missing"] == [
        "survey/1 worker(s).cpu_us_per_event"
    ]
