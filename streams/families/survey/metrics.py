"""Survey KPI math (SPEC §3.1): pure functions over integer counters, no Faust.

Counters are integers (counts and sums of integer scores), so merging buckets
and partitions in any order gives exactly the same totals, and every KPI is
computed once from totals with the formula as the SPEC writes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cxpulse.streams.family import Kpi


class S:
    """Counter slots of a survey bucket aggregate.

    Plain ints, not an ``IntEnum``: every event indexes lists with them, and an enum
    member costs a lookup plus ``__index__`` each time (py-spy, ``benchmarks/profile.py``).
    """

    NPS_N = 0
    PROMOTERS = 1
    PASSIVES = 2
    DETRACTORS = 3
    CSAT_N = 4
    CSAT_SATISFIED = 5
    CSAT_SUM = 6
    CES_N = 7
    CES_EASY = 8
    CES_SUM = 9
    SWITCH_N = 10
    SWITCH_TOP = 11
    SWITCH_SUM = 12
    REPURCHASE_N = 13
    REPURCHASE_TOP = 14
    REPURCHASE_SUM = 15
    RESPONSES = 16
    INVITATIONS = 17
    #: correlation pairs (x = overall, y = the other score): :data:`PAIR_SLOTS` exact sums
    #: from each base, in the order ``n, sum_x, sum_y, sum_xx, sum_yy, sum_xy``
    R_NPS = 18
    R_SWITCH = 24
    R_REPURCHASE = 30


#: slots per correlation metric: n, sum_x, sum_y, sum_xx, sum_yy, sum_xy
PAIR_SLOTS = 6
SLOTS = S.R_REPURCHASE + PAIR_SLOTS
#: correlation metric, its first slot, and the question paired with ``overall``
CORRELATIONS = (
    ("overall_recommend_r", S.R_NPS, "nps"),
    ("overall_switch_r", S.R_SWITCH, "switch"),
    ("overall_repurchase_r", S.R_REPURCHASE, "repurchase"),
)
_SUM_NAMES = ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")


def answer_deltas(question: str, score: int) -> tuple[tuple[int, int], ...]:
    """Counter increments for one answer."""
    if question == "nps":
        band = S.PROMOTERS if score >= 9 else S.PASSIVES if score >= 7 else S.DETRACTORS
        return ((S.NPS_N, 1), (band, 1))
    if question == "csat":
        return ((S.CSAT_N, 1), (S.CSAT_SATISFIED, int(score >= 4)), (S.CSAT_SUM, score))
    if question == "ces":
        return ((S.CES_N, 1), (S.CES_EASY, int(score >= 5)), (S.CES_SUM, score))
    if question == "switch":
        return ((S.SWITCH_N, 1), (S.SWITCH_TOP, int(score >= 9)), (S.SWITCH_SUM, score))
    if question == "repurchase":
        return ((S.REPURCHASE_N, 1), (S.REPURCHASE_TOP, int(score >= 9)), (S.REPURCHASE_SUM, score))
    return ()  # "overall" feeds response_rate and the correlations (paired by the family)


def pair_deltas(base: int, x: int, y: int, sign: int = 1) -> tuple[tuple[int, int], ...]:
    """Counter increments for one (overall, other) pair; ``sign`` −1 takes it back."""
    return (
        (base, sign),
        (base + 1, sign * x),
        (base + 2, sign * y),
        (base + 3, sign * x * x),
        (base + 4, sign * y * y),
        (base + 5, sign * x * y),
    )


def pearson(metric: str, n: int, sx: int, sy: int, sxx: int, syy: int, sxy: int) -> Kpi:
    """r = (n·Σxy − Σx·Σy) / √((n·Σxx − (Σx)²)·(n·Σyy − (Σy)²)) from exact integer sums.

    ``None`` when n < 3 or either variance is 0. The numerator and both variances
    are exact integers; rounding happens once, in the square root and the division,
    and a result a rounding step beyond ±1 is clamped to ±1.
    """
    vx, vy = n * sxx - sx * sx, n * syy - sy * sy
    value: float | None = None
    if n >= 3 and vx > 0 and vy > 0:
        value = max(-1.0, min(1.0, (n * sxy - sx * sy) / math.sqrt(vx * vy)))
    return Kpi(metric, value, n, dict(zip(_SUM_NAMES, (sx, sy, sxx, syy, sxy), strict=True)))


def nps(promoters: int, passives: int, detractors: int) -> Kpi:
    """NPS = 100·(P−D)/N with the 95 % margin of error 196·√((p + d − (p−d)²)/N)."""
    n = promoters + passives + detractors
    if n == 0:
        return Kpi("nps", None, 0, {"promoters": 0, "passives": 0, "detractors": 0, "moe95": None})
    p, d = promoters / n, detractors / n
    variance = p + d - (p - d) ** 2
    moe = 196 * math.sqrt(max(variance, 0.0) / n)
    stats = {"promoters": promoters, "passives": passives, "detractors": detractors, "moe95": moe}
    return Kpi("nps", 100 * (promoters - detractors) / n, n, stats)


def ratio(numerator: int, denominator: int) -> float | None:
    """A share that is ``None`` (never 0) over zero observations."""
    return numerator / denominator if denominator else None


def survey_kpis(c: Sequence[int]) -> list[Kpi]:
    """Every survey KPI that has at least one observation in the summed counters ``c``."""
    out: list[Kpi] = []
    if c[S.NPS_N]:
        out.append(nps(c[S.PROMOTERS], c[S.PASSIVES], c[S.DETRACTORS]))
    if c[S.CSAT_N]:
        n = c[S.CSAT_N]
        stats = {"satisfied": c[S.CSAT_SATISFIED], "mean": c[S.CSAT_SUM] / n}
        out.append(Kpi("csat", c[S.CSAT_SATISFIED] / n, n, stats))
    if c[S.CES_N]:
        n = c[S.CES_N]
        stats = {"easy": c[S.CES_EASY], "easy_ratio": c[S.CES_EASY] / n}
        out.append(Kpi("ces", c[S.CES_SUM] / n, n, stats))
    for metric, n_slot, top_slot, sum_slot in (
        ("switch_intent", S.SWITCH_N, S.SWITCH_TOP, S.SWITCH_SUM),
        ("repurchase_intent", S.REPURCHASE_N, S.REPURCHASE_TOP, S.REPURCHASE_SUM),
    ):
        n = c[n_slot]
        if n:
            stats = {"top_box": c[top_slot], "mean": c[sum_slot] / n}
            out.append(Kpi(metric, c[top_slot] / n, n, stats))
    if c[S.RESPONSES] or c[S.INVITATIONS]:
        stats = {"responses": c[S.RESPONSES], "invitations": c[S.INVITATIONS]}
        out.append(
            Kpi("response_rate", ratio(c[S.RESPONSES], c[S.INVITATIONS]), c[S.INVITATIONS], stats)
        )
    for metric, base, _ in CORRELATIONS:
        if c[base]:
            out.append(pearson(metric, *c[base : base + PAIR_SLOTS]))
    return out
