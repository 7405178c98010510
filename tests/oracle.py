"""An independent batch computation of final survey KPI records, for the tests.

Written from SPEC §1–§3.1 directly and deliberately naively: no buckets, no
sketches, no shared code with the engine. It replays each partition's records
in order to decide duplicates and late events, then computes every (metric,
window, segment, end) from the accepted events by brute force.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

HORIZON_MS = 24 * 3_600_000


@dataclass(frozen=True)
class Produced:
    """A record as produced to the input topic (value is the raw JSON object or bytes)."""

    partition: int
    value: Any  # dict for well-formed events, bytes for garbage
    invalid_reason: str | None = None  # what the test expects, for garbage


@dataclass
class Classified:
    accepted: list[dict[str, Any]]
    late: list[dict[str, Any]]
    duplicates: int
    invalid: list[Produced]


def classify(records: Sequence[Produced], partitions: int, lateness_ms: int) -> Classified:
    """Per partition, in order: invalid, heartbeat, duplicate, late or accepted (SPEC §2)."""
    out = Classified([], [], 0, [])
    by_partition: dict[int, list[Produced]] = defaultdict(list)
    for rec in records:
        by_partition[rec.partition].append(rec)
    for p in range(partitions):
        max_ts: int | None = None
        seen: dict[str, int] = {}
        for rec in by_partition[p]:
            if rec.invalid_reason is not None:
                out.invalid.append(rec)
                continue
            ev = rec.value
            wm = None if max_ts is None else max_ts - lateness_ms
            if ev["type"] == "heartbeat":
                if wm is None or ev["ts"] >= wm:
                    max_ts = ev["ts"] if max_ts is None else max(max_ts, ev["ts"])
                continue
            first = seen.get(ev["event_id"])
            if first is not None and (wm is None or first >= wm - HORIZON_MS):
                out.duplicates += 1
                continue
            if wm is not None and ev["ts"] < wm:
                out.late.append(ev)
                continue
            seen[ev["event_id"]] = ev["ts"]
            max_ts = ev["ts"] if max_ts is None else max(max_ts, ev["ts"])
            out.accepted.append(ev)
    return out


def _segments(ev: dict[str, Any]) -> list[str]:
    return ["all", f"channel={ev.get('channel') or 'unknown'}"]


def survey_finals(
    accepted: Iterable[dict[str, Any]], windows: Sequence[tuple[str, int, int]]
) -> dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]]:
    """``{(metric, window, segment, end_ms): (value, n, stats)}`` for every window with data."""
    events = sorted(accepted, key=lambda e: e["ts"])  # stable: ties keep arrival order
    # response_rate: each response counts once, at its first answer in event time
    first_answer: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev["type"] == "answer" and ev["response_id"] not in first_answer:
            first_answer[ev["response_id"]] = ev
    result: dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]] = {}
    for name, size, step in windows:
        ends: set[int] = set()
        for ev in events:
            first = ev["ts"] - ev["ts"] % step + step
            ends.update(range(first, first + size, step))
        for end in sorted(ends):
            inside = [e for e in events if end - size <= e["ts"] < end]
            segments = {s for e in inside for s in _segments(e)}
            for seg in segments:
                chosen = [e for e in inside if seg in _segments(e)]
                for metric, value in _metrics(chosen, first_answer).items():
                    result[(metric, name, seg, end)] = value
    return result


def _metrics(
    events: list[dict[str, Any]], first_answer: dict[str, dict[str, Any]]
) -> dict[str, tuple[float | None, int, dict[str, Any]]]:
    out: dict[str, tuple[float | None, int, dict[str, Any]]] = {}

    def scores(q: str) -> list[int]:
        return [int(e["score"]) for e in events if e["type"] == "answer" and e["question"] == q]

    nps = scores("nps")
    if nps:
        n = len(nps)
        promoters = sum(1 for s in nps if s >= 9)
        detractors = sum(1 for s in nps if s <= 6)
        p, d = promoters / n, detractors / n
        moe = 196 * math.sqrt((p + d - (p - d) ** 2) / n)
        stats = {"promoters": promoters, "passives": n - promoters - detractors,
                 "detractors": detractors, "moe95": moe}  # fmt: skip
        out["nps"] = (100 * (promoters - detractors) / n, n, stats)
    csat = scores("csat")
    if csat:
        sat = sum(1 for s in csat if s >= 4)
        out["csat"] = (
            sat / len(csat),
            len(csat),
            {"satisfied": sat, "mean": sum(csat) / len(csat)},
        )
    ces = scores("ces")
    if ces:
        easy = sum(1 for s in ces if s >= 5)
        out["ces"] = (sum(ces) / len(ces), len(ces), {"easy": easy, "easy_ratio": easy / len(ces)})
    for metric, q in (("switch_intent", "switch"), ("repurchase_intent", "repurchase")):
        xs = scores(q)
        if xs:
            top = sum(1 for s in xs if s >= 9)
            out[metric] = (top / len(xs), len(xs), {"top_box": top, "mean": sum(xs) / len(xs)})
    invitations = sum(1 for e in events if e["type"] == "invitation_sent")
    responses = sum(
        1 for e in events if e["type"] == "answer" and first_answer[e["response_id"]] is e
    )
    if invitations or responses:
        value = responses / invitations if invitations else None
        out["response_rate"] = (value, invitations,
                                {"responses": responses, "invitations": invitations})  # fmt: skip
    return out


def cart_finals(
    accepted: Iterable[dict[str, Any]],
    windows: Sequence[tuple[str, int, int]],
    abandon_after_ms: int = 30 * 60_000,
    recovery_ms: int = 7 * 86_400_000,
) -> dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]]:
    """SPEC §3.2 by brute force: each cart's events sorted by ``ts`` (ties: arrival)."""
    by_cart: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in accepted:
        by_cart[ev["cart_id"]].append(ev)
    outcomes: list[tuple[int, str, str, float]] = []  # (ts, kind, channel, value)
    for events in by_cart.values():
        events = sorted(events, key=lambda e: e["ts"])
        session: dict[str, Any] | None = None
        abandoned: dict[str, Any] | None = None
        for ev in events:
            if session is not None and ev["ts"] >= session["last"] + abandon_after_ms:
                at = session["last"] + abandon_after_ms
                outcomes.append((at, "abandoned", session["ch"], session["v"]))
                if session["co"]:
                    outcomes.append((at, "co_abandoned", session["ch"], 0.0))
                abandoned, session = {"at": at, "ch": session["ch"]}, None
            ch = ev.get("channel") or "unknown"
            if session is None:
                if (ev["type"] == "purchased" and abandoned is not None
                        and ev["ts"] - abandoned["at"] <= recovery_ms):  # fmt: skip
                    outcomes.append((ev["ts"], "recovered", abandoned["ch"], ev["cart_value"]))
                    continue
                session, abandoned = {"ch": ch, "co": False}, None
            session.update(last=ev["ts"], v=ev["cart_value"])
            if ev["type"] in ("checkout_started", "purchased"):
                session["co"] = True
            if ev["type"] == "purchased":
                outcomes.append((ev["ts"], "converted", session["ch"], 0.0))
                session = None
        if session is not None:  # the closing heartbeat passes every timeout
            at = session["last"] + abandon_after_ms
            outcomes.append((at, "abandoned", session["ch"], session["v"]))
            if session["co"]:
                outcomes.append((at, "co_abandoned", session["ch"], 0.0))
    result: dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]] = {}
    for name, size, step in windows:
        ends: set[int] = set()
        for ts, *_ in outcomes:
            first = ts - ts % step + step
            ends.update(range(first, first + size, step))
        for end in sorted(ends):
            inside = [o for o in outcomes if end - size <= o[0] < end]
            for seg in {"all", *(f"channel={o[2]}" for o in inside)}:
                chosen = [o for o in inside if seg in ("all", f"channel={o[2]}")]
                count = Counter(o[1] for o in chosen)

                def total(kind: str, chosen: list[Any] = chosen) -> float:
                    return math.fsum(o[3] for o in chosen if o[1] == kind)

                ab, conv = count["abandoned"], count["converted"]
                if ab or conv or count["recovered"]:
                    stats = {"abandoned": ab, "converted": conv,
                             "abandoned_value": total("abandoned"),
                             "recovered": count["recovered"],
                             "recovered_value": total("recovered")}  # fmt: skip
                    value = ab / (ab + conv) if ab + conv else None
                    result[("cart_abandonment", name, seg, end)] = (value, ab + conv, stats)
                co_ab = count["co_abandoned"]
                if co_ab or conv:
                    stats = {"abandoned": co_ab, "converted": conv}
                    value = co_ab / (co_ab + conv)
                    result[("checkout_abandonment", name, seg, end)] = (value, co_ab + conv, stats)
    return result
