"""The benchmark's result: one JSON document, the figures it must hold, and the printed table.

Shape (``schema_version`` 1)::

    {"schema_version": 1, "verified": bool, "complete": bool, "missing": [...],
     "machine": {...}, "settings": {...},
     "workloads": {"survey": {"events", "events_by_topic", "ceiling": {...},
                              "runs": [{"workers": 1, "events_per_s", ...}, ...]},
                   "mixed": {...}}}

A run that lacks a figure (e.g. a latency marker never seen) is *incomplete*
and, like a failed verification, makes ``cxpulse bench`` exit non-zero.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import Any

SCHEMA_VERSION = 1
#: figures every worker run must have (``latency.*`` nested)
RUN_FIGURES = (
    "events_per_s",
    "ratio_to_ceiling",
    "cpu_us_per_event",
    "peak_rss_mb",
    "latency.p50_ms",
    "latency.p99_ms",
)
CEILING_FIGURES = ("events_per_s", "cpu_us_per_event")
#: the share of the paced phase's target rate the producer must reach for its latency to
#: be the workers' (below it, markers wait in the producer's own queue)
PACE_KEPT = 0.9


def machine() -> dict[str, Any]:
    """Where the figures come from: they only compare within one machine and run."""
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def missing_figures(workloads: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """``workload/what`` of every figure that is absent or not a number."""
    missing: list[str] = []

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x

    for name, wl in workloads.items():
        ceiling = wl.get("ceiling") or {}
        missing += [f"{name}/ceiling.{f}" for f in CEILING_FIGURES if not number(ceiling.get(f))]
        runs = wl.get("runs") or []
        if not runs:
            missing.append(f"{name}/runs")
        for run in runs:
            where = f"{name}/{run.get('workers')} worker(s)"
            for fig in RUN_FIGURES:
                value = _get(run, fig)
                ok = (
                    bool(value) and all(number(v) for v in value)
                    if fig == "peak_rss_mb"
                    else number(value)
                )
                if not ok:
                    missing.append(f"{where}.{fig}")
    return missing


def result(
    settings: Mapping[str, Any], workloads: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The whole document; ``verified`` only if every run's verification passed."""
    runs = [run for wl in workloads.values() for run in wl.get("runs") or []]
    verified = bool(runs) and all(run.get("verification", {}).get("passed") for run in runs)
    missing = missing_figures(workloads)
    return {
        "schema_version": SCHEMA_VERSION,
        "verified": verified,
        "complete": not missing,
        "missing": missing,
        "machine": machine(),
        "settings": dict(settings),
        "workloads": dict(workloads),
    }


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return format(value, spec)
    return "-"


HEADER = (
    f"{'workload':9}{'consumer':22}{'events/s':>10}{'×ceiling':>9}{'CPU µs/ev':>10}"
    f"{'peak RSS MB':>13}{'p50 ms':>9}{'p99 ms':>9}  verified"
)


def table(doc: Mapping[str, Any]) -> str:
    """The printed summary: a ceiling row and one row per worker count, per workload."""
    lines = [HEADER, "-" * len(HEADER)]
    for name, wl in doc["workloads"].items():
        ceiling = wl.get("ceiling") or {}
        lines.append(
            f"{name:9}{'raw aiokafka + orjson':22}{_fmt(ceiling.get('events_per_s'), ',.0f'):>10}"
            f"{'1.00':>9}{_fmt(ceiling.get('cpu_us_per_event'), '.1f'):>10}"
            f"{'':>13}{'':>9}{'':>9}"
        )
        for run in wl.get("runs") or []:
            n = run.get("workers")
            rss: Sequence[Any] = run.get("peak_rss_mb") or []
            latency = run.get("latency") or {}
            passed = run.get("verification", {}).get("passed")
            lines.append(
                f"{'':9}{f'cxpulse, {n} worker' + ('s' if n != 1 else ''):22}"
                f"{_fmt(run.get('events_per_s'), ',.0f'):>10}"
                f"{_fmt(run.get('ratio_to_ceiling'), '.2f'):>9}"
                f"{_fmt(run.get('cpu_us_per_event'), '.1f'):>10}"
                f"{' / '.join(_fmt(r, '.0f') for r in rss) or '-':>13}"
                f"{_fmt(latency.get('p50_ms'), '.1f'):>9}"
                f"{_fmt(latency.get('p99_ms'), '.1f'):>9}"
                f"  {'yes' if passed else 'NO'}"
            )
    lines.append("")
    for name, wl in doc["workloads"].items():
        for run in wl.get("runs") or []:
            latency = run.get("latency") or {}
            target, achieved = latency.get("target_rate_per_s"), latency.get("achieved_rate_per_s")
            if target and achieved is not None and achieved < PACE_KEPT * target:
                lines.append(
                    f"{name}, {run['workers']} worker(s): the producer did not keep the pace "
                    f"({achieved:,.0f} of {target:,.0f} events/s): the latency includes its "
                    "own queue (try a lower --paced-share)"
                )
            trend = latency.get("trend_ms") or {}
            first, last = trend.get("first_tenth_p50"), trend.get("last_tenth_p50")
            if first is not None and last is not None and last > 2 * first:
                lines.append(
                    f"{name}, {run['workers']} worker(s): fell behind the paced stream "
                    f"(latency p50 {first:.0f} ms in its first tenth, {last:.0f} ms in its last)"
                )
    lines.append(
        "events/s over all worker processes (backlog drained, group settled); CPU summed "
        "over them; latency: produce → cx_events_total at 50 % of that rate."
    )
    lines.append(
        f"verified against independent counts: {'yes' if doc['verified'] else 'NO'}; "
        f"all figures present: {'yes' if doc['complete'] else 'NO ' + str(doc['missing'])}"
    )
    return "\n".join(lines)
