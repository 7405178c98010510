"""The terminal view's plain mode (output not a terminal): what a log of ``make demo`` shows."""

from __future__ import annotations

from typing import Any

from cxpulse.agents.tools.view import ViewState, summary, transition_line

ORDER = {"5m/1m": 0, "1h/1m": 1}


def _kpi(metric: str, value: float | None, window: str = "5m/1m", **stats: Any) -> dict[str, Any]:
    return {
        "metric": metric,
        "window": window,
        "segment": "all",
        "window_end": "2026-12-04T10:00:00.000Z",
        "value": value,
        "n": 40,
        "stats": stats,
        "final": False,
        "watermark": None,
    }


def _alert(state: str) -> dict[str, Any]:
    return {
        "alert": "nps_drop",
        "metric": "nps",
        "segment": "channel=app",
        "state": state,
        "current": -20.5,
        "baseline": 12.0,
        "n": 41,
        "at": "2026-12-04T10:00:00.000Z",
    }


def test_summary_names_each_headline_kpi_and_what_fires() -> None:
    state = ViewState()
    assert summary(state).startswith("NPS — | CSAT — |")
    assert summary(state).endswith("alerts firing: none")
    state.on_kpi(_kpi("nps", 12.5), ORDER)
    state.on_kpi(_kpi("ticket_first_response_seconds", 3.0, p90=95.4), ORDER)
    state.on_alert(_alert("firing"))
    line = summary(state)
    assert "NPS +12.5" in line
    assert "First response p90 95 s" in line
    assert line.endswith("alerts firing: nps_drop@channel=app")
    state.on_alert(_alert("resolved"))
    assert summary(state).endswith("alerts firing: none")


def test_a_transition_is_one_plain_line() -> None:
    line = transition_line(_alert("firing"))
    assert line == (
        "alert firing: nps_drop channel=app current=-20.500 baseline=12.000 n=41 "
        "at 2026-12-04T10:00:00.000Z"
    )
