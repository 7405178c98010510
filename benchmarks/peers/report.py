"""The peers' result: verification of each contender's counts, the ratios, the printed table.

Pure functions over plain data: what the bench measured goes in, the JSON
document and its table come out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks import report as bench_report

SCHEMA_VERSION = 1
#: how many mismatching keys a failed verification lists
SHOWN_PROBLEMS = 5
#: contender -> what it computes, for the table and the JSON
COMPUTES = {
    "raw": "aiokafka getmany + orjson.loads + a dict: per (channel, minute) counts, no windows",
    "cxpulse": "cxpulse worker, windows 1m/1m, segments all + channel: validation, dedup, "
    "response memory, watermarks, KPI records",
    "cxpulse-default": "cxpulse worker with the SPEC's default windows "
    "(15m/1m, 1h/1m, 24h/15m, 7d/1h, 30d/1d), verified on 15m/1m",
    "bytewax": "Bytewax 0.21.1: fold_window, EventClock, TumblingWindower 1 min, key = channel",
    "quix": "Quix Streams 3.28.1: group_by(channel) + tumbling_window 1 min + custom "
    "Aggregator, .current()",
    "faust": "faust-streaming 0.15.3: one agent, a Table += 1 per answer (memory store, changelog)",
}
#: the contenders of a run, in the order they run
CONTENDERS = ("raw", "cxpulse", "cxpulse-default", "bytewax", "quix", "faust")

Key = tuple[str, int]
Triple = tuple[int, int, int]


def verify_counts(expected: Mapping[Key, Triple], got: Mapping[Key, Triple]) -> dict[str, Any]:
    """Every expected key with the same three counts, and no other key with any count.

    Returns ``{"passed", "keys", "answers", "problems"}``; ``answers`` is what
    the contender counted in all, ``problems`` the first mismatches.
    """
    problems: list[str] = []
    zero = (0, 0, 0)
    for key in sorted(set(expected) | set(got)):
        want, have = expected.get(key, zero), got.get(key, zero)
        if tuple(want) != tuple(have):
            problems.append(f"{key[0]} {key[1]}: counted {list(have)}, expected {list(want)}")
    return {
        "passed": not problems and bool(expected),
        "keys": len(expected),
        "answers": sum(sum(v) for v in got.values()),
        "mismatches": len(problems),
        "problems": problems[:SHOWN_PROBLEMS]
        or ([] if expected else ["nothing to verify: no expected counts"]),
    }


def add_ratios(contenders: Sequence[dict[str, Any]]) -> None:
    """``ratio_to_bytewax`` and ``ratio_to_raw`` of events/s, where both rates exist."""
    rates = {c["name"]: c.get("events_per_s") for c in contenders if c.get("status") == "ok"}
    for c in contenders:
        rate = c.get("events_per_s") if c.get("status") == "ok" else None
        for ref, field in (("bytewax", "ratio_to_bytewax"), ("raw", "ratio_to_raw")):
            base = rates.get(ref)
            c[field] = rate / base if rate and base else None


#: a contender's figures that ``medians`` summarizes over the rounds
FIGURES = ("events_per_s", "cpu_us_per_event", "peak_rss_mb", "ratio_to_bytewax", "ratio_to_raw")


def medians(contenders: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per contender over the rounds of one density: the median of each figure, the range
    of each ratio (each ratio taken within its own round, ``add_ratios``) and the highest
    peak RSS.

    A contender that failed in any round has ``status`` ``"failed"`` here too; its
    figures are those of the rounds it passed.
    """
    out: list[dict[str, Any]] = []
    for name in dict.fromkeys(c["name"] for c in contenders):
        runs = [c for c in contenders if c["name"] == name]
        ok = [c for c in runs if c.get("status") == "ok"]
        entry: dict[str, Any] = {
            "name": name,
            "rounds": len(runs),
            "status": next((c.get("status") for c in runs if c.get("status") != "ok"), "ok"),
        }
        for field in FIGURES:
            values = [c[field] for c in ok if c.get(field) is not None]
            s = bench_report.spread(values) if values else None
            entry[field] = None if s is None else s["median"]
            if field.startswith("ratio_"):
                entry[f"{field}_range"] = None if s is None else [s["min"], s["max"]]
            elif field == "peak_rss_mb":  # for a memory bound
                entry["peak_rss_mb_max"] = None if s is None else s["max"]
        out.append(entry)
    return out


def result(settings: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The document; ``verified`` only if every contender that ran was verified."""
    ran = [c for run in runs for c in run["contenders"] if c.get("status") != "skipped"]
    return {
        "schema_version": SCHEMA_VERSION,
        "verified": bool(ran) and all(c.get("status") == "ok" for c in ran),
        "skipped": sorted(
            {c["name"] for run in runs for c in run["contenders"] if c.get("status") == "skipped"}
        ),
        "machine": bench_report.machine(),
        "settings": dict(settings),
        "densities": list(runs),
    }


def _fmt(value: Any, spec: str) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return format(value, spec)
    return "-"


HEADER = (
    f"{'contender':17}{'events/s':>10}{'CPU µs/ev':>10}{'peak RSS MB':>12}"
    f"{'×Bytewax':>9}{'×raw':>7}  verified"
)


def table(doc: Mapping[str, Any]) -> str:
    """One block per density: a row per contender, then what each computes."""
    lines: list[str] = []
    for run in doc["densities"]:
        lines.append(
            f"density {run['density']:g} answers per second of event time "
            f"({run['answers']:,} answers over {run['span_s'] / 3600:.2f} h, ±"
            f"{run['jitter_ms'] / 1000:g} s out of order, {run['partitions']} partitions)"
        )
        lines += [HEADER, "-" * len(HEADER)]
        for c in run["contenders"]:
            status = c.get("status")
            verdict = {"ok": "yes", "skipped": "skipped"}.get(str(status), "NO")
            name = f"{c['name']} #{c['round']}" if run.get("medians") else c["name"]
            lines.append(
                f"{name:17}{_fmt(c.get('events_per_s'), ',.0f'):>10}"
                f"{_fmt(c.get('cpu_us_per_event'), '.1f'):>10}"
                f"{_fmt(c.get('peak_rss_mb'), '.0f'):>12}"
                f"{_fmt(c.get('ratio_to_bytewax'), '.2f'):>9}"
                f"{_fmt(c.get('ratio_to_raw'), '.2f'):>7}  {verdict}"
            )
            if status != "ok" and c.get("reason"):
                lines.append(f"{'':17}{c['reason']}")
        if run.get("medians"):
            rounds = max(m["rounds"] for m in run["medians"])
            lines.append(f"median of {rounds} rounds (×: range over the rounds, each in its round)")
            for m in run["medians"]:
                spans = [
                    "-" if m.get(f) is None else f"{m[f][0]:.2f}-{m[f][1]:.2f}"
                    for f in ("ratio_to_bytewax_range", "ratio_to_raw_range")
                ]
                verdict = "yes" if m.get("status") == "ok" else "NO"
                lines.append(
                    f"{m['name']:17}{_fmt(m.get('events_per_s'), ',.0f'):>10}"
                    f"{_fmt(m.get('cpu_us_per_event'), '.1f'):>10}"
                    f"{_fmt(m.get('peak_rss_mb'), '.0f'):>12}"
                    f"{_fmt(m.get('ratio_to_bytewax'), '.2f'):>9}"
                    f"{_fmt(m.get('ratio_to_raw'), '.2f'):>7}  {verdict}"
                    f"  (×Bytewax {spans[0]}, ×raw {spans[1]},"
                    f" peak RSS max {_fmt(m.get('peak_rss_mb_max'), '.0f')} MB)"
                )
        lines.append("")
    lines.append("what each contender computes (one process each, reading the topic from 0):")
    names = [c["name"] for run in doc["densities"] for c in run["contenders"]]
    for name in dict.fromkeys(names):
        lines.append(f"  {name}: {COMPUTES.get(name, '?')}")
    lines.append(
        "events/s from the first record handled to the last result in; CPU over the same "
        "span (all threads); peak RSS = the process's VmHWM."
    )
    skipped = doc.get("skipped") or []
    lines.append(
        f"verified against independent counts: {'yes' if doc['verified'] else 'NO'}"
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    )
    return "\n".join(lines)
