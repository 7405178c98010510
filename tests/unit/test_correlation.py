"""Correlation with the overall experience (SPEC §3.1): r, the pairs, their order.

* r from the exact sums equals a direct computation on the pairs (mean-centred,
  from the statistics module), and is null for n < 3 or a zero variance;
* through the real engine and merge stage, the finals equal the oracle's (which
  pairs each response's answers sorted by event time), whatever the arrival order
  within the lateness and the batch boundaries, and equal the finals of the same
  events arriving in event-time order;
* examples pin the replacement of a pair by an earlier answer, the move of a
  response's segment, and a response forgotten after the horizon.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.survey.family import SurveyFamily
from cxpulse.streams.families.survey.metrics import (
    CORRELATIONS,
    PAIR_SLOTS,
    SLOTS,
    pair_deltas,
    pearson,
    survey_kpis,
)
from cxpulse.streams.watermarks import TimePolicy
from cxpulse.streams.windows import parse_window
from tests.oracle import Produced, classify, correlation_pairs, survey_finals
from tests.simulation import Simulation

LATENESS = 120_000
POLICY = TimePolicy(LATENESS, 10**12, 300_000)
WINDOWS = tuple(parse_window(w) for w in ("15m/1m", "1h/1m", "24h/15m"))
GRIDS = tuple(sorted({w.step_ms for w in WINDOWS}))
DAY = 86_400_000
T0 = 1_795_000_000_000
NOW = 1_900_000_000_000
MINUTE = 60_000
R_METRICS = tuple(metric for metric, _, _ in CORRELATIONS)
SCORES = {"overall": (0, 10), "nps": (0, 10), "switch": (0, 10), "repurchase": (0, 10)}
SCORES["csat"] = (1, 5)

xy_pairs = st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), max_size=40)


# --------------------------------------------------------------------------- r itself


def r_of(xy: Sequence[tuple[int, int]]) -> Any:
    """r of the pairs through the counters, as the family and the merge stage build them."""
    counts = [0] * SLOTS
    base = CORRELATIONS[0][1]
    for x, y in xy:
        for slot, delta in pair_deltas(base, x, y):
            counts[slot] += delta
    return pearson(R_METRICS[0], *counts[base : base + PAIR_SLOTS])


@settings(max_examples=300)
@given(xy_pairs)
def test_r_equals_a_direct_computation_on_the_pairs(xy: list[tuple[int, int]]) -> None:
    kpi = r_of(xy)
    xs, ys = [x for x, _ in xy], [y for _, y in xy]
    assert kpi.n == len(xy)
    assert kpi.stats == {
        "sum_x": sum(xs),
        "sum_y": sum(ys),
        "sum_xx": sum(x * x for x in xs),
        "sum_yy": sum(y * y for y in ys),
        "sum_xy": sum(x * y for x, y in xy),
    }
    if len(xy) < 3 or len(set(xs)) == 1 or len(set(ys)) == 1:
        assert kpi.value is None
    else:
        assert kpi.value == pytest.approx(statistics.correlation(xs, ys), rel=1e-9, abs=1e-12)
        assert -1.0 <= kpi.value <= 1.0


@pytest.mark.parametrize(
    "xy",
    [
        [],
        [(3, 4)],
        [(3, 4), (5, 9)],  # n = 2 < 3
        [(7, 1), (7, 5), (7, 9)],  # overall never varies
        [(1, 6), (4, 6), (9, 6)],  # the other score never varies
    ],
)
def test_r_is_null_below_three_pairs_or_without_variance(xy: list[tuple[int, int]]) -> None:
    assert r_of(xy).value is None


def test_r_of_perfect_lines_is_exactly_plus_or_minus_one() -> None:
    assert r_of([(0, 1), (5, 6), (9, 10)]).value == 1.0
    assert r_of([(0, 10), (5, 5), (10, 0), (2, 8)]).value == -1.0


@settings(max_examples=200)
@given(xy_pairs, st.lists(st.integers(0, 4), max_size=40), st.randoms())
def test_sums_merge_in_any_order(xy: list[tuple[int, int]], where: list[int], rnd: Any) -> None:
    """Buckets summed in any order give the same r as the pairs taken together."""
    buckets = [[0] * SLOTS for _ in range(5)]
    base = CORRELATIONS[1][1]
    for (x, y), b in zip(xy, where + [0] * len(xy), strict=False):
        for slot, delta in pair_deltas(base, x, y):
            buckets[b][slot] += delta
    rnd.shuffle(buckets)
    total = [sum(col) for col in zip(*buckets, strict=True)]
    got = {k.metric: k for k in survey_kpis(total)}
    if not xy:
        assert got == {}
        return
    assert set(got) == {CORRELATIONS[1][0]}
    want = r_of(xy)
    assert (got[CORRELATIONS[1][0]].value, got[CORRELATIONS[1][0]].stats) == (
        want.value,
        want.stats,
    )


def test_a_retraction_takes_back_exactly_what_the_pair_added() -> None:
    counts = [0] * SLOTS
    base = CORRELATIONS[2][1]
    for sign in (1, -1):
        for slot, delta in pair_deltas(base, 7, 3, sign):
            counts[slot] += delta
    assert counts == [0] * SLOTS


# --------------------------------------------------------------------------- the family


def config(horizon_ms: int) -> EngineConfig:
    return EngineConfig("survey", GRIDS, POLICY, horizon_ms, ("channel",), 20)


def answer(n: int, response: str, question: str, score: int, ts: int, channel: str) -> Any:
    return {
        "event_id": f"{response}-{n}",
        "type": "answer",
        "ts": ts,
        "channel": channel,
        "survey_id": "s1",
        "response_id": response,
        "customer_id": "c1",
        "question": question,
        "score": score,
    }


def run(items: Sequence[Any], cuts: Sequence[int] = (), horizon_ms: int = DAY) -> Simulation:
    sim = Simulation(SurveyFamily(horizon_ms), config(horizon_ms), WINDOWS, POLICY, NOW)
    last = max((it["ts"] for it in items), default=T0)
    closing = {"type": "heartbeat", "ts": last + 3 * DAY}
    raw = [RawRecord(i, None, orjson.dumps(it), None) for i, it in enumerate([*items, closing])]
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    for a, b in pairwise(points):
        if b > a:
            sim.feed(raw[a:b])
    return sim


def oracle(items: Sequence[Any], horizon_ms: int = DAY) -> dict[str, list[Any]]:
    accepted = classify([Produced(0, it) for it in items], 1, LATENESS).accepted
    windows = [(w.name, w.size_ms, w.step_ms) for w in WINDOWS]
    want = survey_finals(accepted, windows, horizon_ms)
    return {f"{m}|{w}|{s}|{end}": [v, n, st] for (m, w, s, end), (v, n, st) in want.items()}


def finals(sim: Simulation, metrics: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """One body per final key (every copy identical), optionally only some metrics."""
    out: dict[str, list[Any]] = {}
    for key, bodies in sim.finals.items():
        assert all(b == bodies[0] for b in bodies), key
        if metrics is None or key.split("|", 1)[0] in metrics:
            out[key] = bodies[0]
    return out


def only(want: dict[str, list[Any]], metrics: Sequence[str]) -> dict[str, list[Any]]:
    return {k: v for k, v in want.items() if k.split("|", 1)[0] in metrics}


def assert_same(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    assert got.keys() == want.keys(), sorted(set(got) ^ set(want))[:5]
    for key, body in want.items():
        assert orjson.dumps(got[key]) == orjson.dumps(body), (key, got[key], body)


@st.composite
def survey_stream(draw: st.DrawFn, span_ms: int = 40 * MINUTE) -> list[dict[str, Any]]:
    """A few responses answering overall and the paired questions, arriving out of order
    within the lateness (never late), in a few channels, with a duplicate or two."""
    events = []
    for r in range(draw(st.integers(1, 8))):
        start = T0 + draw(st.integers(0, span_ms // 1000)) * 1000
        for n in range(draw(st.integers(1, 7))):
            question = draw(st.sampled_from(sorted(SCORES)))
            ts = start + draw(st.integers(0, 150)) * 1000  # ties happen too
            score = draw(st.integers(*SCORES[question]))
            channel = draw(st.sampled_from(["web", "app", "email"]))
            events.append(answer(n, f"r{r}", question, score, ts, channel))
    rng = random.Random(draw(st.integers(0, 10_000)))
    events.sort(key=lambda e: e["ts"] + rng.randrange(LATENESS))  # out of order, never late
    for _ in range(draw(st.integers(0, 2))):  # a copy shortly after its original
        if events:
            at = draw(st.integers(0, len(events) - 1))
            events.insert(min(at + draw(st.integers(1, 3)), len(events)), dict(events[at]))
    return events


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(survey_stream(), st.lists(st.integers(0, 100), max_size=5))
def test_any_arrival_order_within_lateness_gives_the_oracles_finals(
    items: list[dict[str, Any]], cuts: list[int]
) -> None:
    """Every survey metric, correlations included, equals the oracle exactly."""
    assert_same(finals(run(items, cuts)), oracle(items))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(survey_stream(), st.lists(st.integers(0, 100), max_size=5))
def test_shuffled_arrival_gives_the_finals_of_event_time_order(
    items: list[dict[str, Any]], cuts: list[int]
) -> None:
    in_order = sorted(items, key=lambda e: e["ts"])  # stable: ties keep arrival order
    assert finals(run(items, cuts)) == finals(run(in_order))


def spread_over_horizons(items: list[dict[str, Any]], spacing: int) -> list[dict[str, Any]]:
    """Each response's ``n``-th answer moved ``n * spacing`` later (so one id spans several
    horizons), then shuffled within the lateness."""
    spread = [{**it, "ts": it["ts"] + int(it["event_id"].split("-")[1]) * spacing} for it in items]
    rng = random.Random(len(items))
    spread.sort(key=lambda e: e["ts"] + rng.randrange(LATENESS))
    return spread


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    survey_stream(span_ms=50 * MINUTE),
    st.lists(st.integers(0, 100), max_size=5),
    st.sampled_from([5 * MINUTE, 20 * MINUTE]),
    st.sampled_from([MINUTE, 2 * MINUTE, 9 * MINUTE]),
)
def test_a_response_is_remembered_for_the_horizon_after_its_first_answer(
    items: list[dict[str, Any]], cuts: list[int], horizon: int, spacing: int
) -> None:
    """Answers of one response id span several horizons: pairs form within each
    remembered response, as in event-time order, whatever the arrival order within
    the lateness and the batches (an id answered after the horizon is a new response)."""
    spread = spread_over_horizons(items, spacing)
    got = run(spread, cuts, horizon)
    assert_same(finals(got, R_METRICS), only(oracle(spread, horizon), R_METRICS))
    whole = run(spread, (), horizon)
    assert finals(got) == finals(whole)  # every survey metric: batch boundaries do not matter
    got.feed([])  # tombstones of the last batch's drops
    assert got.proc.entities == {}, "responses outlive their horizon"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    survey_stream(span_ms=50 * MINUTE),
    st.lists(st.integers(0, 100), max_size=6),
    st.sampled_from([5 * MINUTE, 20 * MINUTE]),
    st.sampled_from([MINUTE, 2 * MINUTE, 9 * MINUTE]),
)
def test_forgetting_responses_in_the_engine_is_what_on_wake_does(
    items: list[dict[str, Any]], cuts: list[int], horizon: int, spacing: int
) -> None:
    """The engine drops a response past ``forget_at`` itself, a key at a time, or a
    whole wake step at once when every value in it is a packed int below the family's
    ``forget_below``: every batch's output and state are those of waking it through the
    family's ``on_wake``."""
    spread = spread_over_horizons(items, spacing)
    last = max((it["ts"] for it in spread), default=T0)
    closing = [{"type": "heartbeat", "ts": last + k * horizon} for k in (1, 3)]
    raw = [RawRecord(i, None, orjson.dumps(it), None) for i, it in enumerate([*spread, *closing])]
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    family = SurveyFamily(horizon)
    slow = PartitionProcessor(SurveyFamily(horizon), config(horizon), 0, NOW)
    slow._forget_at = slow._forget_below = None  # every woken response goes through on_wake
    keyed = PartitionProcessor(SurveyFamily(horizon), config(horizon), 0, NOW)
    keyed._forget_below = None  # a key at a time, through forget_at
    asked: list[Any] = []
    keyed._forget_at = lambda value: asked.append(value) or family.forget_at(value)
    whole = PartitionProcessor(SurveyFamily(horizon), config(horizon), 0, NOW)
    one_by_one: list[Any] = []
    whole._forget_at = lambda value: one_by_one.append(value) or family.forget_at(value)
    for a, b in [*pairwise(points), (len(raw), len(raw))]:  # and one batch after the end
        want = slow.process(raw[a:b], NOW, None)
        for proc in (keyed, whole):
            got = proc.process(raw[a:b], NOW, None)
            assert (got.writes, got.commit, got.outcomes) == (
                want.writes,
                want.commit,
                want.outcomes,
            )
            assert got.snapshots == want.snapshots
            assert proc.entities == slow.entities
            assert list(proc._wake.items()) == list(slow._wake.items())
    assert keyed.entities == whole.entities == {}
    assert bool(asked) == bool(spread)  # the per-key path was taken
    assert len(one_by_one) <= len(asked)


def test_a_wake_step_of_packed_responses_is_forgotten_whole() -> None:
    """Responses with one answer each are packed ints: a heartbeat past their horizon
    drops each wake step whole, without a ``forget_at`` call per key, and gives what
    the per-key path gives, records included."""
    horizon = 5 * MINUTE
    items = [answer(i, f"r{i}", "nps", i % 11, T0 + i * 7_000, "web") for i in range(40)]
    items.append({"type": "heartbeat", "ts": T0 + 40 * 7_000 + 2 * horizon})
    raw = [RawRecord(i, None, orjson.dumps(it), None) for i, it in enumerate(items)]
    family = SurveyFamily(horizon)
    procs = []
    for bulk in (True, False):
        proc = PartitionProcessor(SurveyFamily(horizon), config(horizon), 0, NOW)
        asked: list[Any] = []
        proc._forget_at = lambda value, asked=asked: asked.append(value) or family.forget_at(value)
        if not bulk:
            proc._forget_below = None
        outs = [proc.process(raw[:20], NOW, None)]
        assert len(proc.entities) == 20
        assert all(type(v) is int for v in proc.entities.values())  # packed
        outs.append(proc.process(raw[20:], NOW, None))
        procs.append((proc, outs, asked))
    (whole, got, none_asked), (keyed, want, asked) = procs
    assert [(o.writes, o.commit, o.outcomes) for o in got] == [
        (o.writes, o.commit, o.outcomes) for o in want
    ]
    assert whole.entities == keyed.entities == {}
    assert none_asked == [] and len(asked) == 40


def test_an_answer_of_the_previous_response_arriving_after_the_next_began() -> None:
    """Around the horizon, answers of the old and the new response interleave on arrival."""
    h = 10 * MINUTE
    items = [
        answer(0, "r", "overall", 5, T0, "web"),
        answer(1, "r", "nps", 7, T0 + 570_000, "web"),
        answer(2, "r", "nps", 3, T0 + 630_000, "app"),  # past the horizon: a new response
        answer(3, "r", "switch", 2, T0 + 590_000, "web"),  # still the first response's
        answer(4, "r", "overall", 9, T0 + 640_000, "web"),
    ]
    assert sorted(correlation_pairs(items, h)) == [
        (T0 + 570_000, "overall_recommend_r", "web", 5, 7),
        (T0 + 590_000, "overall_switch_r", "web", 5, 2),
        (T0 + 640_000, "overall_recommend_r", "app", 9, 3),
    ]
    for cuts in ([], [3], [2, 4]):
        sim = run(items, cuts, h)
        assert_same(finals(sim, R_METRICS), only(oracle(items, h), R_METRICS))
        responses = {
            k: v[2]["responses"] for k, v in finals(sim, ["response_rate"]).items() if "|24h/" in k
        }
        assert max(responses.values()) == 2  # the id counts once per remembered response


def _pairs_of(sim: Simulation, metric: str, window: str = "24h/15m") -> dict[str, Any]:
    """The body of the day window that holds everything, per segment."""
    out = {}
    for key, body in finals(sim, [metric]).items():
        _, w, segment, end = key.split("|")
        if w == window and int(end) == T0 - T0 % (15 * MINUTE) + DAY:
            out[segment] = body
    return out


def test_an_earlier_overall_arriving_later_replaces_the_pair() -> None:
    items = [
        answer(0, "r", "overall", 3, T0 + 60_000, "web"),
        answer(1, "r", "nps", 9, T0 + 90_000, "web"),
        answer(2, "r", "overall", 8, T0 + 30_000, "web"),  # earlier in event time
        answer(3, "r", "nps", 2, T0 + 95_000, "web"),  # a second nps answer: not the first
    ]
    sim = run(items)
    assert_same(finals(sim), oracle(items))
    body = _pairs_of(sim, "overall_recommend_r")["all"]
    assert body[1] == 1 and (body[2]["sum_x"], body[2]["sum_y"]) == (8, 9)
    # the pair is attributed at the later answer (the nps at +90 s), not the replaced one
    minute = [k for k in finals(sim, ["overall_recommend_r"]) if "|15m/1m|all|" in k]
    ends = sorted(int(k.rsplit("|", 1)[1]) for k in minute)
    assert ends[0] == T0 + 90_000 - (T0 + 90_000) % MINUTE + MINUTE


def test_the_pair_counts_in_the_segment_of_the_responses_first_answer() -> None:
    items = [
        answer(0, "r", "overall", 6, T0 + 60_000, "web"),
        answer(1, "r", "switch", 2, T0 + 70_000, "web"),
        answer(2, "r", "csat", 4, T0 + 10_000, "app"),  # the response's first answer, late
    ]
    sim = run(items)
    assert_same(finals(sim), oracle(items))
    assert set(_pairs_of(sim, "overall_switch_r")) == {"all", "channel=app"}


def test_no_overall_answer_no_pair() -> None:
    items = [answer(i, f"r{i}", "nps", i, T0 + i * 1000, "web") for i in range(5)]
    assert not finals(run(items), R_METRICS)


def test_r_over_a_window_with_a_few_responses() -> None:
    scores = [(2, 3, 8), (5, 6, 5), (9, 10, 1), (7, 7, 3)]  # (overall, nps, switch)
    items = []
    for i, (o, n, s) in enumerate(scores):
        ts = T0 + i * 10_000
        items += [
            answer(3 * i, f"r{i}", "nps", n, ts, "web"),
            answer(3 * i + 1, f"r{i}", "overall", o, ts + 1_000, "web"),
            answer(3 * i + 2, f"r{i}", "switch", s, ts + 2_000, "web"),
        ]
    sim = run(items)
    recommend = _pairs_of(sim, "overall_recommend_r")["all"]
    switch = _pairs_of(sim, "overall_switch_r")["all"]
    xs = [o for o, _, _ in scores]
    assert recommend[0] == pytest.approx(statistics.correlation(xs, [n for _, n, _ in scores]))
    assert switch[0] == pytest.approx(statistics.correlation(xs, [s for _, _, s in scores]))
    assert recommend[0] > 0.9 and switch[0] < -0.9
    assert recommend[1] == switch[1] == 4
    assert not _pairs_of(sim, "overall_repurchase_r")


def test_pairs_use_the_correlation_oracle_independently() -> None:
    """The oracle's pairs by hand: one response forgotten after the horizon starts anew."""
    h = 10 * MINUTE
    items = [
        answer(0, "r", "overall", 4, T0, "web"),
        answer(1, "r", "nps", 6, T0 + MINUTE, "web"),
        answer(2, "r", "nps", 9, T0 + h, "app"),  # at the horizon: a new response
        answer(3, "r", "overall", 10, T0 + h + MINUTE, "web"),
    ]
    pairs = correlation_pairs(items, h)
    assert sorted(pairs) == [
        (T0 + MINUTE, "overall_recommend_r", "web", 4, 6),
        (T0 + h + MINUTE, "overall_recommend_r", "app", 10, 9),
    ]
    assert_same(finals(run(items, (), h), R_METRICS), only(oracle(items, h), R_METRICS))
