"""Survey KPI math (SPEC §3.1): score bands, NPS and its margin of error, mergeability."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.streams.families.survey.metrics import SLOTS, S, answer_deltas, nps, ratio, survey_kpis
from cxpulse.streams.family import Kpi

QUESTIONS = ("nps", "csat", "ces", "switch", "repurchase", "overall")
SCORE_RANGE = {
    "nps": (0, 10),
    "switch": (0, 10),
    "repurchase": (0, 10),
    "overall": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
}


def spec_moe95(promoters: int, passives: int, detractors: int) -> float:
    """SPEC §3.1: moe95 = 196·√((p + d − (p−d)²)/N)."""
    n = promoters + passives + detractors
    p, d = promoters / n, detractors / n
    return 196 * math.sqrt((p + d - (p - d) ** 2) / n)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return bool(a == b) and type(a) is type(b)


def assert_kpis_equal(got: list[Kpi], expected: dict[str, Kpi]) -> None:
    assert [k.metric for k in got] == list(expected)  # SPEC §3.1 table order, no extras
    for kpi in got:
        want = expected[kpi.metric]
        assert kpi.n == want.n, kpi.metric
        assert (kpi.value is None) == (want.value is None), kpi.metric
        if kpi.value is not None:
            assert math.isclose(kpi.value, want.value, rel_tol=1e-12, abs_tol=1e-9), kpi  # type: ignore[arg-type]
        assert set(kpi.stats) == set(want.stats), kpi.metric
        for name, value in kpi.stats.items():
            assert _close(value, want.stats[name]), (kpi.metric, name, value, want.stats[name])


# --------------------------------------------------------------------------- nps


def test_nps_spec_example() -> None:
    """SPEC §4.1: promoters 66, passives 39, detractors 15 → 42.5, n 120, moe95 12.58…"""
    kpi = nps(66, 39, 15)
    assert kpi.metric == "nps"
    assert kpi.value == pytest.approx(42.5)
    assert kpi.n == 120
    assert kpi.stats["promoters"] == 66
    assert kpi.stats["passives"] == 39
    assert kpi.stats["detractors"] == 15
    expected = 196 * math.sqrt((0.55 + 0.125 - (0.55 - 0.125) ** 2) / 120)
    assert kpi.stats["moe95"] == pytest.approx(expected, rel=1e-12)
    assert round(kpi.stats["moe95"], 4) == 12.5804
    assert round(kpi.stats["moe95"], 2) == 12.58  # not rounded in the record, though
    assert kpi.stats["moe95"] != 12.58


@pytest.mark.parametrize(
    ("p", "pa", "d", "value"),
    [
        (5, 0, 0, 100.0),
        (0, 0, 7, -100.0),
        (0, 4, 0, 0.0),
        (1, 0, 1, 0.0),
        (1, 1, 1, 0.0),
        (3, 1, 0, 75.0),
    ],
)
def test_nps_values(p: int, pa: int, d: int, value: float) -> None:
    kpi = nps(p, pa, d)
    assert kpi.value == pytest.approx(value)
    assert kpi.n == p + pa + d
    assert kpi.stats["moe95"] == pytest.approx(spec_moe95(p, pa, d), abs=1e-9)


def test_nps_moe_is_zero_when_everyone_agrees() -> None:
    assert nps(5, 0, 0).stats["moe95"] == 0.0
    assert nps(0, 0, 9).stats["moe95"] == 0.0
    assert nps(0, 3, 0).stats["moe95"] == 0.0


def test_nps_over_zero_answers_is_null_never_zero() -> None:
    kpi = nps(0, 0, 0)
    assert kpi.value is None
    assert kpi.stats["moe95"] is None


def test_ratio() -> None:
    assert ratio(1, 4) == 0.25
    assert ratio(0, 4) == 0.0
    assert ratio(0, 0) is None
    assert ratio(3, 0) is None
    assert ratio(5, 4) == 1.25


# --------------------------------------------------------------------------- answer_deltas


def _deltas(question: str, score: int) -> dict[int, int]:
    out: dict[int, int] = {}
    for slot, delta in answer_deltas(question, score):
        out[slot] = out.get(slot, 0) + delta
    return out


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0, S.DETRACTORS),
        (6, S.DETRACTORS),
        (7, S.PASSIVES),
        (8, S.PASSIVES),
        (9, S.PROMOTERS),
        (10, S.PROMOTERS),
    ],
)
def test_nps_bands(score: int, band: S) -> None:
    assert _deltas("nps", score) == {S.NPS_N: 1, band: 1}


@pytest.mark.parametrize(
    ("question", "score", "expected"),
    [
        ("csat", 1, {S.CSAT_N: 1, S.CSAT_SATISFIED: 0, S.CSAT_SUM: 1}),
        ("csat", 3, {S.CSAT_N: 1, S.CSAT_SATISFIED: 0, S.CSAT_SUM: 3}),
        ("csat", 4, {S.CSAT_N: 1, S.CSAT_SATISFIED: 1, S.CSAT_SUM: 4}),
        ("csat", 5, {S.CSAT_N: 1, S.CSAT_SATISFIED: 1, S.CSAT_SUM: 5}),
        ("ces", 1, {S.CES_N: 1, S.CES_EASY: 0, S.CES_SUM: 1}),
        ("ces", 4, {S.CES_N: 1, S.CES_EASY: 0, S.CES_SUM: 4}),
        ("ces", 5, {S.CES_N: 1, S.CES_EASY: 1, S.CES_SUM: 5}),
        ("ces", 7, {S.CES_N: 1, S.CES_EASY: 1, S.CES_SUM: 7}),
        ("switch", 0, {S.SWITCH_N: 1, S.SWITCH_TOP: 0, S.SWITCH_SUM: 0}),
        ("switch", 8, {S.SWITCH_N: 1, S.SWITCH_TOP: 0, S.SWITCH_SUM: 8}),
        ("switch", 9, {S.SWITCH_N: 1, S.SWITCH_TOP: 1, S.SWITCH_SUM: 9}),
        ("switch", 10, {S.SWITCH_N: 1, S.SWITCH_TOP: 1, S.SWITCH_SUM: 10}),
        ("repurchase", 8, {S.REPURCHASE_N: 1, S.REPURCHASE_TOP: 0, S.REPURCHASE_SUM: 8}),
        ("repurchase", 9, {S.REPURCHASE_N: 1, S.REPURCHASE_TOP: 1, S.REPURCHASE_SUM: 9}),
    ],
)
def test_score_bands(question: str, score: int, expected: dict[int, int]) -> None:
    assert _deltas(question, score) == expected


@pytest.mark.parametrize("score", range(11))
def test_overall_feeds_no_metric(score: int) -> None:
    assert answer_deltas("overall", score) == ()


def test_deltas_stay_within_their_question_slots() -> None:
    own = {
        "nps": {S.NPS_N, S.PROMOTERS, S.PASSIVES, S.DETRACTORS},
        "csat": {S.CSAT_N, S.CSAT_SATISFIED, S.CSAT_SUM},
        "ces": {S.CES_N, S.CES_EASY, S.CES_SUM},
        "switch": {S.SWITCH_N, S.SWITCH_TOP, S.SWITCH_SUM},
        "repurchase": {S.REPURCHASE_N, S.REPURCHASE_TOP, S.REPURCHASE_SUM},
        "overall": set(),
    }
    for question, (lo, hi) in SCORE_RANGE.items():
        for score in range(lo, hi + 1):
            assert set(_deltas(question, score)) <= own[question]
            assert S.RESPONSES not in _deltas(question, score)  # counted by the family
            assert S.INVITATIONS not in _deltas(question, score)


# --------------------------------------------------------------------------- survey_kpis


def test_no_observations_no_kpis() -> None:
    assert survey_kpis([0] * SLOTS) == []


def test_only_metrics_with_observations() -> None:
    c = [0] * SLOTS
    c[S.CSAT_N], c[S.CSAT_SATISFIED], c[S.CSAT_SUM] = 4, 3, 16
    kpis = survey_kpis(c)
    assert [k.metric for k in kpis] == ["csat"]
    assert kpis[0] == Kpi("csat", 0.75, 4, {"satisfied": 3, "mean": 4.0})


def test_ces_and_intents() -> None:
    c = [0] * SLOTS
    c[S.CES_N], c[S.CES_EASY], c[S.CES_SUM] = 4, 1, 14
    c[S.SWITCH_N], c[S.SWITCH_TOP], c[S.SWITCH_SUM] = 2, 0, 11
    c[S.REPURCHASE_N], c[S.REPURCHASE_TOP], c[S.REPURCHASE_SUM] = 5, 5, 48
    by_metric = {k.metric: k for k in survey_kpis(c)}
    assert set(by_metric) == {"ces", "switch_intent", "repurchase_intent"}
    assert by_metric["ces"] == Kpi("ces", 3.5, 4, {"easy": 1, "easy_ratio": 0.25})
    assert by_metric["switch_intent"] == Kpi("switch_intent", 0.0, 2, {"top_box": 0, "mean": 5.5})
    assert by_metric["repurchase_intent"] == Kpi(
        "repurchase_intent", 1.0, 5, {"top_box": 5, "mean": 9.6}
    )


@pytest.mark.parametrize(
    ("responses", "invitations", "value"),
    [
        (1, 4, 0.25),
        (0, 5, 0.0),  # invitations are observations: the ratio 0 is real
        (4, 4, 1.0),
        (6, 4, 1.5),  # may exceed 1 (responses to invitations of an earlier window)
        (3, 0, None),  # no invitations: null, never 0, and the record is still there
    ],
)
def test_response_rate(responses: int, invitations: int, value: float | None) -> None:
    c = [0] * SLOTS
    c[S.RESPONSES], c[S.INVITATIONS] = responses, invitations
    kpis = survey_kpis(c)
    assert kpis == [
        Kpi(
            "response_rate",
            value,
            invitations,
            {"responses": responses, "invitations": invitations},
        )
    ]


# --------------------------------------------------------------------------- mergeability

# An event: ("invitation",) or ("answer", question, score, response_id).
_answer = st.sampled_from(QUESTIONS).flatmap(
    lambda q: st.tuples(
        st.just("answer"),
        st.just(q),
        st.integers(*SCORE_RANGE[q]),
        st.integers(0, 15).map(lambda i: f"r-{i}"),
    )
)
_event = st.one_of(st.just(("invitation",)), _answer)


def bucket_counters(events: list[tuple[Any, ...]], buckets: list[int], k: int) -> list[list[int]]:
    """Counter vectors per bucket, as the family adds them (a response counts at its first
    answer, which lands in that answer's bucket)."""
    out = [[0] * SLOTS for _ in range(k)]
    seen: set[str] = set()
    for event, b in zip(events, buckets, strict=True):
        if event[0] == "invitation":
            out[b][S.INVITATIONS] += 1
            continue
        _, question, score, response_id = event
        for slot, delta in answer_deltas(question, score):
            out[b][slot] += delta
        if response_id not in seen:
            seen.add(response_id)
            out[b][S.RESPONSES] += 1
    return out


def direct_kpis(events: list[tuple[Any, ...]]) -> dict[str, Kpi]:
    """The SPEC §3.1 table computed straight from the event list."""
    answers: dict[str, list[int]] = {q: [] for q in QUESTIONS}
    responses: set[str] = set()
    invitations = 0
    for event in events:
        if event[0] == "invitation":
            invitations += 1
        else:
            answers[event[1]].append(event[2])
            responses.add(event[3])
    out: dict[str, Kpi] = {}
    scores = answers["nps"]
    if scores:
        n = len(scores)
        p_count = sum(1 for s in scores if 9 <= s <= 10)
        d_count = sum(1 for s in scores if 0 <= s <= 6)
        out["nps"] = Kpi(
            "nps",
            100 * (p_count - d_count) / n,
            n,
            {
                "promoters": p_count,
                "passives": n - p_count - d_count,
                "detractors": d_count,
                "moe95": spec_moe95(p_count, n - p_count - d_count, d_count),
            },
        )
    scores = answers["csat"]
    if scores:
        satisfied = sum(1 for s in scores if s in (4, 5))
        out["csat"] = Kpi(
            "csat",
            satisfied / len(scores),
            len(scores),
            {"satisfied": satisfied, "mean": sum(scores) / len(scores)},
        )
    scores = answers["ces"]
    if scores:
        easy = sum(1 for s in scores if 5 <= s <= 7)
        out["ces"] = Kpi(
            "ces",
            sum(scores) / len(scores),
            len(scores),
            {"easy": easy, "easy_ratio": easy / len(scores)},
        )
    for metric, question in (("switch_intent", "switch"), ("repurchase_intent", "repurchase")):
        scores = answers[question]
        if scores:
            top = sum(1 for s in scores if s >= 9)
            out[metric] = Kpi(
                metric,
                top / len(scores),
                len(scores),
                {"top_box": top, "mean": sum(scores) / len(scores)},
            )
    if responses or invitations:
        out["response_rate"] = Kpi(
            "response_rate",
            len(responses) / invitations if invitations else None,
            invitations,
            {"responses": len(responses), "invitations": invitations},
        )
    return out


@st.composite
def _split(draw: st.DrawFn) -> tuple[list[tuple[Any, ...]], list[list[int]], list[int]]:
    events = draw(st.lists(_event, max_size=60))
    k = draw(st.integers(1, 6))
    buckets = draw(st.lists(st.integers(0, k - 1), min_size=len(events), max_size=len(events)))
    counters = bucket_counters(events, buckets, k)
    order = draw(st.permutations(range(k)))
    return events, counters, order


def _sum(vectors: list[list[int]]) -> list[int]:
    total = [0] * SLOTS
    for vector in vectors:
        for i, v in enumerate(vector):
            total[i] += v
    return total


@settings(max_examples=300)
@given(_split())
def test_merge_in_any_order_equals_direct_computation(
    case: tuple[list[tuple[Any, ...]], list[list[int]], list[int]],
) -> None:
    events, counters, order = case
    in_order = _sum(counters)
    permuted = _sum([counters[i] for i in order])
    assert permuted == in_order
    # Pairwise (tree) merging gives the same totals too.
    tree = [list(c) for c in (counters[i] for i in order)]
    while len(tree) > 1:
        tree = [_sum(tree[i : i + 2]) for i in range(0, len(tree), 2)]
    assert tree[0] == in_order
    assert survey_kpis(permuted) == survey_kpis(in_order)  # identical, not just close
    assert_kpis_equal(survey_kpis(in_order), direct_kpis(events))
    for kpi in survey_kpis(in_order):
        assert kpi.n > 0 or kpi.metric == "response_rate"
