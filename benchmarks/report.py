"""The benchmark's result: one JSON document, the figures it must hold, and the printed table.

Shape (``schema_version`` 1)::

    {"schema_version": 1, "verified": bool, "complete": bool, "missing": [...],
     "machine": {...}, "settings": {...},
     "workloads": {"survey": {"events", "events_by_topic", "ceiling": {...},
                              "ceilings": [{...}, ...],  # one per round
                              "runs": [{"workers": 1, "round": 1, "events_per_s", ...}, ...]},
                   "mixed": {...}},
     "summary": {...}}  # with more than one round: see :func:`summary`

A run that lacks a figure (e.g. a latency marker never seen) is *incomplete*
and, like a failed verification, makes ``cxpulse bench`` exit non-zero. With
``--paced-events 0`` there is no latency phase, so no latency figure is asked
for: the drain alone is then a complete run.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
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


def missing_figures(
    workloads: Mapping[str, Mapping[str, Any]], *, latency: bool = True
) -> list[str]:
    """``workload/what`` of every figure that is absent or not a number; the latency
    figures only if the run had a latency phase (``latency``)."""
    missing: list[str] = []
    wanted = [f for f in RUN_FIGURES if latency or not f.startswith("latency.")]

    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x

    for name, wl in workloads.items():
        for ceiling in wl.get("ceilings") or [wl.get("ceiling") or {}]:
            missing += [
                f"{name}/ceiling.{f}" for f in CEILING_FIGURES if not number((ceiling or {}).get(f))
            ]
        runs = wl.get("runs") or []
        if not runs:
            missing.append(f"{name}/runs")
        for run in runs:
            where = f"{name}/{run.get('workers')} worker(s)"
            if run.get("round", 1) > 1:
                where += f"/round {run['round']}"
            for fig in wanted:
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
    # no paced events: no latency phase was run, so none of its figures is missing
    missing = missing_figures(workloads, latency=settings.get("paced_events") != 0)
    doc = {
        "schema_version": SCHEMA_VERSION,
        "verified": verified,
        "complete": not missing,
        "missing": missing,
        "machine": machine(),
        "settings": dict(settings),
        "workloads": dict(workloads),
    }
    if max((run.get("round", 1) for run in runs), default=1) > 1:
        doc["summary"] = summary(workloads)
    return doc


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, least and greatest of some figures (rounds of one measurement)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _ratio(a: Any, b: Any) -> float | None:
    numbers = all(isinstance(x, (int, float)) and x == x for x in (a, b))
    return a / b if numbers and b else None


def summary(workloads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Median and range over the rounds of every figure, per workload and worker count.

    ``mixed_to_survey``, per worker count: within each round, the mixed workload's
    events/s over survey's, and survey's CPU µs/event over mixed's (what the rate
    ratio would be for a worker bound by its own CPU). Every round runs both
    workloads (in a counterbalanced order, ``benchmarks.rounds``), so a ratio taken
    within one round is steadier than one of two runs minutes apart. Only figures every
    run has are summarised.
    """
    runs_of: dict[tuple[str, int], dict[int, Mapping[str, Any]]] = {}
    for name, wl in workloads.items():
        for run in wl.get("runs") or []:
            runs_of.setdefault((name, run["workers"]), {})[run.get("round", 1)] = run
    out: dict[str, Any] = {"runs": [], "mixed_to_survey": []}
    for (name, workers), by_round in runs_of.items():
        row: dict[str, Any] = {"workload": name, "workers": workers, "rounds": len(by_round)}
        for fig in ("events_per_s", "cpu_us_per_event"):
            values = [r.get(fig) for r in by_round.values()]
            numbers = [float(v) for v in values if isinstance(v, (int, float))]
            if len(numbers) == len(values):
                row[fig] = spread(numbers)
        rss = [max(r.get("peak_rss_mb") or [math.nan]) for r in by_round.values()]
        if all(v == v for v in rss):  # not NaN
            row["peak_rss_mb"] = spread(rss)  # the largest process of each run
        out["runs"].append(row)
    for (name, workers), mixed in runs_of.items():
        survey = runs_of.get(("survey", workers))
        if name != "mixed" or survey is None:
            continue
        rounds, rate, cpu = [], [], []
        for r in sorted(set(mixed) & set(survey)):
            by_rate = _ratio(mixed[r].get("events_per_s"), survey[r].get("events_per_s"))
            by_cpu = _ratio(survey[r].get("cpu_us_per_event"), mixed[r].get("cpu_us_per_event"))
            if by_rate is not None and by_cpu is not None:  # a run without figures: left out
                rounds.append(r)
                rate.append(by_rate)
                cpu.append(by_cpu)
        if rounds:
            out["mixed_to_survey"].append(
                {
                    "workers": workers,
                    "rounds": rounds,
                    "events_per_s": {"per_round": rate, **spread(rate)},
                    "by_cpu": {"per_round": cpu, **spread(cpu)},
                }
            )
    return out


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return format(value, spec)
    return "-"


HEADER = (
    f"{'workload':9}{'consumer':22}{'events/s':>10}{'×ceiling':>9}{'CPU µs/ev':>10}"
    f"{'peak RSS MB':>13}{'p50 ms':>9}{'p99 ms':>9}  verified"
)


def run_name(workload: str, run: Mapping[str, Any]) -> str:
    """``survey, 1 worker(s)``, and the round when there are several."""
    number = run.get("round", 1)
    return f"{workload}, {run.get('workers')} worker(s)" + (
        f", round {number}" if number > 1 else ""
    )


def _ceiling_row(first: str, ceiling: Mapping[str, Any]) -> str:
    return (
        f"{first:9}{'raw aiokafka + orjson':22}{_fmt(ceiling.get('events_per_s'), ',.0f'):>10}"
        f"{'1.00':>9}{_fmt(ceiling.get('cpu_us_per_event'), '.1f'):>10}"
        f"{'':>13}{'':>9}{'':>9}"
    )


def _workers(n: object) -> str:
    """``"1 worker"``, ``"2 workers"``."""
    return f"{n} worker" + ("s" if n != 1 else "")


def _run_row(run: Mapping[str, Any]) -> str:
    n = run.get("workers")
    rss: Sequence[Any] = run.get("peak_rss_mb") or []
    latency = run.get("latency") or {}
    passed = run.get("verification", {}).get("passed")
    return (
        f"{'':9}{'cxpulse, ' + _workers(n):22}"
        f"{_fmt(run.get('events_per_s'), ',.0f'):>10}"
        f"{_fmt(run.get('ratio_to_ceiling'), '.2f'):>9}"
        f"{_fmt(run.get('cpu_us_per_event'), '.1f'):>10}"
        f"{' / '.join(_fmt(r, '.0f') for r in rss) or '-':>13}"
        f"{_fmt(latency.get('p50_ms'), '.1f'):>9}"
        f"{_fmt(latency.get('p99_ms'), '.1f'):>9}"
        f"  {'yes' if passed else 'NO'}"
    )


def _range(spread: Mapping[str, float] | None, spec: str) -> str:
    if not spread:
        return "-"
    m, lo, hi = (format(spread[k], spec) for k in ("median", "min", "max"))
    return f"{m} ({lo}-{hi})"


def _summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The medians over the rounds, with their range, and mixed against survey."""
    lines = ["", "median over the rounds (min-max):"]
    for row in summary.get("runs") or []:
        lines.append(
            f"{row['workload']}, {_workers(row['workers'])} ({row['rounds']} rounds): "
            f"{_range(row.get('events_per_s'), ',.0f')} events/s, "
            f"CPU {_range(row.get('cpu_us_per_event'), '.1f')} µs/event, "
            f"peak RSS {_range(row.get('peak_rss_mb'), '.0f')} MB"
        )
    for ratio in summary.get("mixed_to_survey") or []:
        lines.append(
            f"mixed ÷ survey, {_workers(ratio['workers'])}, within each round: "
            f"events/s {_range(ratio['events_per_s'], '.2f')}; "
            f"by CPU µs/event {_range(ratio['by_cpu'], '.2f')}"
        )
    return lines


def table(doc: Mapping[str, Any]) -> str:
    """The printed summary: a ceiling row and one row per worker count, per workload."""
    lines = [HEADER, "-" * len(HEADER)]
    for name, wl in doc["workloads"].items():
        ceilings = wl.get("ceilings") or [wl.get("ceiling") or {}]
        for number, ceiling in enumerate(ceilings, 1):
            lines.append(_ceiling_row(name if number == 1 else f"round {number}", ceiling or {}))
            runs = [r for r in wl.get("runs") or [] if r.get("round", 1) == number]
            lines.extend(_run_row(run) for run in runs)
    if "summary" in doc:
        lines.extend(_summary_lines(doc["summary"]))
    lines.append("")
    for name, wl in doc["workloads"].items():
        for run in wl.get("runs") or []:
            where = run_name(name, run)
            latency = run.get("latency") or {}
            target, achieved = latency.get("target_rate_per_s"), latency.get("achieved_rate_per_s")
            if target and achieved is not None and achieved < PACE_KEPT * target:
                lines.append(
                    f"{where}: the producer did not keep the pace "
                    f"({achieved:,.0f} of {target:,.0f} events/s): the latency includes its "
                    "own queue (try a lower --paced-share)"
                )
            trend = latency.get("trend_ms") or {}
            first, last = trend.get("first_tenth_p50"), trend.get("last_tenth_p50")
            if first is not None and last is not None and last > 2 * first:
                lines.append(
                    f"{where}: fell behind the paced stream "
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
