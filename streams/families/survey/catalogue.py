"""The survey family's metrics (SPEC §3.1, §4.2)."""

from __future__ import annotations

from cxpulse.streams.catalogue import Gauge, Metric

_CORRELATION_STATS = ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")
#: one gauge for the three correlations, told apart by the ``question`` label
_CORRELATION_HELP = (
    "Pearson r of the overall experience score with the question's score, per response"
)


def _correlation(metric: str, question: str, what: str) -> Metric:
    return Metric(
        metric,
        "survey",
        "r (-1..1)",
        f"Pearson correlation of the overall score with {what} over the responses that"
        " answered both (x = overall, y = the other score)",
        _CORRELATION_STATS,
        (
            Gauge(
                "cx_experience_correlation",
                _CORRELATION_HELP,
                "value",
                (("question", question),),
            ),
        ),
    )


METRICS: tuple[Metric, ...] = (
    Metric(
        "nps",
        "survey",
        "points (-100..100)",
        "Net Promoter Score of the nps answers",
        ("promoters", "passives", "detractors", "moe95"),
        (
            Gauge("cx_nps_score", "Net Promoter Score, -100..100", "value"),
            Gauge(
                "cx_nps_margin_of_error", "95% margin of error of the NPS, points", "stats.moe95"
            ),
            Gauge("cx_nps_responses", "NPS answers behind the score", "n"),
        ),
    ),
    Metric(
        "csat",
        "survey",
        "ratio (0..1)",
        "Share of csat answers scoring 4-5",
        ("satisfied", "mean"),
        (
            Gauge("cx_csat_ratio", "Share of CSAT answers scoring 4-5", "value"),
            Gauge("cx_csat_mean_score", "Mean CSAT score, 1-5", "stats.mean"),
        ),
    ),
    Metric(
        "ces",
        "survey",
        "score (1..7)",
        "Mean Customer Effort Score (7 = very easy)",
        ("easy", "easy_ratio"),
        (
            Gauge("cx_ces_mean_score", "Mean Customer Effort Score, 1-7 (7 = very easy)", "value"),
            Gauge("cx_ces_easy_ratio", "Share of CES answers scoring 5-7", "stats.easy_ratio"),
        ),
    ),
    Metric(
        "switch_intent",
        "survey",
        "ratio (0..1)",
        "Share of switch answers scoring 9-10",
        ("top_box", "mean"),
        (Gauge("cx_switch_intent_ratio", "Share of switch answers 9-10", "value"),),
    ),
    Metric(
        "repurchase_intent",
        "survey",
        "ratio (0..1)",
        "Share of repurchase answers scoring 9-10",
        ("top_box", "mean"),
        (Gauge("cx_repurchase_intent_ratio", "Share of repurchase answers 9-10", "value"),),
    ),
    Metric(
        "response_rate",
        "survey",
        "ratio (may exceed 1)",
        "Responses / invitations",
        ("responses", "invitations"),
        (Gauge("cx_survey_response_ratio", "Survey responses / invitations", "value"),),
    ),
    _correlation("overall_recommend_r", "nps", "the likelihood to recommend (nps)"),
    _correlation("overall_switch_r", "switch", "the likelihood to switch"),
    _correlation("overall_repurchase_r", "repurchase", "the likelihood to repurchase"),
)
