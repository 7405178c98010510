"""Alert records of the ``cx.alerts`` topic (SPEC §4.3).

One record per transition of one rule for one segment, keyed ``"{alert}|{segment}"``
(so a segment's transitions stay in order on one partition). JSON Schema:
``schemas/json/cx.alerts.schema.json``::

    {"schema_version": 1, "alert": "nps_drop", "metric": "nps", "segment": "channel=web",
     "state": "firing", "current": 21.4, "baseline": 48.0, "delta": 26.6, "z": 3.2,
     "n": 140, "window": "1h/1m", "baseline_window": "7d/1h",
     "at": "2026-11-23T11:00:00.000Z", "emitted_at": "2026-11-23T11:00:05.120Z"}

``at`` is the end of the short window evaluated; ``emitted_at`` the wall clock.
``schema_version`` (:data:`SCHEMA_VERSION`) changes only when a field changes meaning
or goes; a new field does not change it.
"""

from __future__ import annotations

from typing import Any

from cxpulse.schemas.timestamps import format_ts

__all__ = ["SCHEMA_VERSION", "alert_key", "alert_record"]

SCHEMA_VERSION = 1


def alert_key(alert: str, segment: str) -> bytes:
    """The Kafka key of an alert record: one partition per rule and segment."""
    return f"{alert}|{segment}".encode()


def alert_record(
    *,
    alert: str,
    metric: str,
    segment: str,
    state: str,
    current: float | None,
    baseline: float | None,
    delta: float | None,
    z: float | None,
    n: int,
    window: str,
    baseline_window: str,
    at: str,
    emitted_at_ms: int,
) -> dict[str, Any]:
    """One transition (``state``: ``firing`` or ``resolved``), as the SPEC shows it."""
    return {
        "schema_version": SCHEMA_VERSION,
        "alert": alert,
        "metric": metric,
        "segment": segment,
        "state": state,
        "current": current,
        "baseline": baseline,
        "delta": delta,
        "z": z,
        "n": n,
        "window": window,
        "baseline_window": baseline_window,
        "at": at,
        "emitted_at": format_ts(emitted_at_ms),
    }
