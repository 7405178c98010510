"""An independent batch computation of final KPI records and open-entity gauges, for the tests.

Written from SPEC §1–§3.3 directly and deliberately naively: no buckets, no
sketches, no shared code with the engine. It replays each partition's records
in order to decide duplicates and late events, then computes every (metric,
window, segment, end) from the accepted events by brute force.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
    #: per partition, the largest ``ts`` that moved its watermark (heartbeats included)
    max_ts: dict[int, int | None] = field(default_factory=dict)


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
        out.max_ts[p] = max_ts
    return out


def open_now(
    records: Sequence[Produced],
    partitions: int,
    lateness_ms: int,
    family: str,
    abandon_after_ms: int = 30 * 60_000,
) -> Counter[str]:
    """The open-entity gauge (``cx_carts_open`` or ``cx_tickets_open``) after ``records``.

    Per segment (``all``, ``channel=...``), by brute force from docs/gauges.md: each
    entity's accepted events so far, sorted by ``ts`` (ties: arrival), leave it open.
    A cart: any event opens a session when none is open, ``purchased`` ends it, and
    it is abandoned only where its partition's watermark (largest ``ts`` so far
    minus the lateness) has reached last activity + ``abandon_after``, before any
    event at or after that time. A ticket: ``created`` opens it (once), ``solved``
    and ``closed`` close it, ``reopened`` reopens it unless closed, ``merged`` ends
    it for good; events before its ``created`` do not count. (Forgetting a ticket a
    dedup horizon after its close or merge, or ``tickets.forget_after`` after its last
    event, is not modelled: traffic for this oracle keeps no ticket past either.)
    """
    out: Counter[str] = Counter()
    for p in range(partitions):
        mine = classify([r for r in records if r.partition == p], partitions, lateness_ms)
        max_ts = mine.max_ts.get(p)
        watermark = None if max_ts is None else max_ts - lateness_ms
        by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ev in mine.accepted:
            by_key[ev["cart_id" if family == "cart" else "ticket_id"]].append(ev)
        for events in by_key.values():
            events.sort(key=lambda e: e["ts"])  # stable: ties keep arrival order
            if family == "cart":
                channel = _open_cart(events, watermark, abandon_after_ms)
            else:
                channel = _open_ticket(events)
            if channel is not None:
                out["all"] += 1
                out[f"channel={channel}"] += 1
    return out


def _open_cart(
    events: list[dict[str, Any]], watermark: int | None, abandon_after_ms: int
) -> str | None:
    """The channel of the cart's open session now, or ``None``."""
    channel: str | None = None
    last = 0

    def abandoned_by(ts: int | None) -> bool:
        due = last + abandon_after_ms
        return (
            channel is not None
            and watermark is not None
            and due <= watermark
            and (ts is None or due <= ts)
        )

    for ev in events:
        if abandoned_by(ev["ts"]):
            channel = None
        if ev["type"] == "purchased":
            channel = None
        elif channel is None:
            channel = ev.get("channel") or "unknown"
        last = ev["ts"]
    return None if abandoned_by(None) else channel


def _open_ticket(events: list[dict[str, Any]]) -> str | None:
    """The channel of the ticket if it is open now, or ``None``."""
    channel: str | None = None
    is_open = closed = False
    for ev in events:
        kind = ev["type"]
        if kind == "merged":
            is_open = False
            break
        if kind == "created" and channel is None:
            channel, is_open = ev.get("channel") or "unknown", True
        elif channel is None:
            continue
        elif kind == "solved":
            is_open = False
        elif kind == "reopened" and not closed:
            is_open = True
        elif kind == "closed":
            is_open, closed = False, True
    return channel if is_open else None


def _segments(ev: dict[str, Any]) -> list[str]:
    return ["all", f"channel={ev.get('channel') or 'unknown'}"]


#: SPEC §3.1: correlation metric -> the question paired with ``overall``
CORRELATIONS = {
    "overall_recommend_r": "nps",
    "overall_switch_r": "switch",
    "overall_repurchase_r": "repurchase",
}


def correlation_pairs(
    events: Iterable[dict[str, Any]], horizon_ms: int = HORIZON_MS
) -> list[tuple[int, str, str, int, int]]:
    """SPEC §3.1 pairs ``(attribution ts, metric, channel, x, y)`` from accepted events.

    Each response's answers in event-time order (ties: arrival order). The response
    is remembered for the horizon after its first answer: an answer at or after that
    starts the response anew. Within one, a pair is the first ``overall`` answer and
    the first answer to the other question, attributed at the later of the two, in
    the channel of the response's first answer.
    """
    by_response: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in sorted(events, key=lambda e: e["ts"]):  # stable
        if ev["type"] == "answer":
            by_response[ev["response_id"]].append(ev)
    pairs: list[tuple[int, str, str, int, int]] = []
    for answers in by_response.values():
        remembered: list[list[dict[str, Any]]] = []
        for ev in answers:
            if not remembered or ev["ts"] >= remembered[-1][0]["ts"] + horizon_ms:
                remembered.append([])
            remembered[-1].append(ev)
        for response in remembered:
            channel = response[0].get("channel") or "unknown"
            first: dict[str, dict[str, Any]] = {}
            for ev in response:
                first.setdefault(ev["question"], ev)
            overall = first.get("overall")
            for metric, question in CORRELATIONS.items():
                other = first.get(question)
                if overall is not None and other is not None:
                    at = max(overall["ts"], other["ts"])
                    x, y = int(overall["score"]), int(other["score"])
                    pairs.append((at, metric, channel, x, y))
    return pairs


def pearson_record(xy: list[tuple[int, int]]) -> tuple[float | None, int, dict[str, Any]]:
    """(value, n, stats) of a correlation metric over its pairs, by the SPEC's formula."""
    n = len(xy)
    sx, sy = sum(x for x, _ in xy), sum(y for _, y in xy)
    sxx, syy = sum(x * x for x, _ in xy), sum(y * y for _, y in xy)
    sxy = sum(x * y for x, y in xy)
    var_x, var_y = n * sxx - sx**2, n * syy - sy**2
    value = None
    if n >= 3 and var_x != 0 and var_y != 0:
        value = (n * sxy - sx * sy) / math.sqrt(var_x * var_y)
    stats = {"sum_x": sx, "sum_y": sy, "sum_xx": sxx, "sum_yy": syy, "sum_xy": sxy}
    return value, n, stats


def survey_finals(
    accepted: Iterable[dict[str, Any]],
    windows: Sequence[tuple[str, int, int]],
    horizon_ms: int = HORIZON_MS,
) -> dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]]:
    """``{(metric, window, segment, end_ms): (value, n, stats)}`` for every window with data."""
    events = sorted(accepted, key=lambda e: e["ts"])  # stable: ties keep arrival order
    pairs = correlation_pairs(events, horizon_ms)
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
            for metric in CORRELATIONS:
                held = [p for p in pairs if p[1] == metric and end - size <= p[0] < end]
                for seg in {"all", *(f"channel={p[2]}" for p in held)}:
                    xy = [(p[3], p[4]) for p in held if seg in ("all", f"channel={p[2]}")]
                    if xy:
                        result[(metric, name, seg, end)] = pearson_record(xy)
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
        stats = {
            "promoters": promoters,
            "passives": n - promoters - detractors,
            "detractors": detractors,
            "moe95": moe,
        }
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
        out["response_rate"] = (
            value,
            invitations,
            {"responses": responses, "invitations": invitations},
        )
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
    # (ts, kind, channel, value): the order value for conversions and recoveries
    outcomes: list[tuple[int, str, str, float]] = []
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
                if (
                    ev["type"] == "purchased"
                    and abandoned is not None
                    and ev["ts"] - abandoned["at"] <= recovery_ms
                ):
                    outcomes.append((ev["ts"], "recovered", abandoned["ch"], ev["cart_value"]))
                    continue
                session, abandoned = {"ch": ch, "co": False}, None
            session.update(last=ev["ts"], v=ev["cart_value"])
            if ev["type"] in ("checkout_started", "purchased"):
                session["co"] = True
            if ev["type"] == "purchased":
                outcomes.append((ev["ts"], "converted", session["ch"], ev["cart_value"]))
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
                    stats = {
                        "abandoned": ab,
                        "converted": conv,
                        "abandoned_value": total("abandoned"),
                        "recovered": count["recovered"],
                        "recovered_value": total("recovered"),
                    }
                    value = ab / (ab + conv) if ab + conv else None
                    result[("cart_abandonment", name, seg, end)] = (value, ab + conv, stats)
                co_ab = count["co_abandoned"]
                if co_ab or conv:
                    stats = {"abandoned": co_ab, "converted": conv}
                    value = co_ab / (co_ab + conv)
                    result[("checkout_abandonment", name, seg, end)] = (value, co_ab + conv, stats)
                orders = conv + count["recovered"]  # SPEC §3.2: conversions and recoveries
                if orders:
                    revenue = math.fsum(o[3] for o in chosen if o[1] in ("converted", "recovered"))
                    stats = {"orders": orders, "revenue": revenue}
                    result[("average_order_value", name, seg, end)] = (
                        revenue / orders,
                        orders,
                        stats,
                    )
    return result


class WallSchedule:
    """Business time by brute force: minute by minute, in local wall time (zoneinfo)."""

    def __init__(self, tz: str, hours: dict[int, list[tuple[int, int]]], holidays: set[Any]):
        from zoneinfo import ZoneInfo

        self.zone = ZoneInfo(tz)
        self.hours = hours
        self.holidays = holidays

    def _open(self, ms: int) -> bool:
        import datetime as dt

        local = dt.datetime.fromtimestamp(ms / 1000, tz=self.zone)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.hours.get(local.weekday(), ()))

    def _pieces(self, start: int) -> Any:
        a = start
        while True:
            b = a - a % 60_000 + 60_000
            yield a, b
            a = b

    def business_ms(self, start: int, end: int) -> int:
        total = 0
        for a, b in self._pieces(start):
            if a >= end:
                return total
            if self._open(a):
                total += min(b, end) - a

    def add_business_ms(self, start: int, duration: int) -> int:
        left = duration
        for a, b in self._pieces(start):
            if left == 0:
                return a
            if self._open(a):
                if b - a >= left:
                    return a + left
                left -= b - a
        raise AssertionError("unreachable")


def nearest_rank(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def ticket_finals(
    accepted: Iterable[dict[str, Any]],
    windows: Sequence[tuple[str, int, int]],
    sla_ms: dict[str, int],
    schedule: WallSchedule | None = None,
) -> dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]]:
    """SPEC §3.3 by brute force, each ticket's events sorted by ``ts`` (ties: arrival).

    Returns exact values; durations' p50/p90 are exact nearest-rank (the engine's
    sketch must be within 1 %).
    """
    by_ticket: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in accepted:
        by_ticket[ev["ticket_id"]].append(ev)
    obs: list[tuple[int, str, str, float]] = []  # (attribution ts, kind, channel, value)
    for events in by_ticket.values():
        events = sorted(events, key=lambda e: e["ts"])
        created = None
        first_reply = first_solved = last_solved = merged_at = None
        closed = False
        ended_at = None  # close or merge: the state is forgotten a horizon later
        for ev in events:
            kind, ts = ev["type"], ev["ts"]
            if (
                ended_at is not None
                and ts > ended_at + HORIZON_MS
                and _sla_decided(created, first_reply, merged_at, ts, sla_ms, schedule)
            ):
                _sla_outcomes(obs, created, first_reply, merged_at, sla_ms, schedule)
                created = first_reply = first_solved = last_solved = merged_at = ended_at = None
                closed = False
            if merged_at is not None:
                continue
            ch = created["channel"] if created else (ev.get("channel") or "unknown")
            if kind == "created" and created is None:
                created = {**ev, "channel": ev.get("channel") or "unknown"}
                obs.append((ts, "created", created["channel"], 1))
                if any(t.lower() == "complaint" for t in ev.get("tags") or []):
                    obs.append((ts, "complaint", created["channel"], 1))
            elif kind == "agent_reply" and created and first_reply is None:
                if ev.get("public", True) is not False and ev.get("via", "human") == "human":
                    first_reply = ts
                    obs.extend(
                        _durations(
                            "ticket_first_response_seconds",
                            created,
                            created["ts"],
                            ts,
                            ts,
                            schedule,
                        )
                    )
            elif kind == "solved":
                obs.append((ts, "solved", ch, 1))
                if created:
                    if first_solved is None:
                        first_solved = ts
                        obs.extend(
                            _durations(
                                "ticket_first_resolution_seconds",
                                created,
                                created["ts"],
                                ts,
                                ts,
                                schedule,
                            )
                        )
                    last_solved = ts
            elif kind == "reopened":
                obs.append((ts, "reopened", ch, 1))
            elif kind == "closed" and created and not closed:
                closed = True  # closed is terminal: a ticket has one full resolution
                ended_at = ts
                if created and last_solved is not None:
                    obs.extend(
                        _durations(
                            "ticket_full_resolution_seconds",
                            created,
                            created["ts"],
                            last_solved,
                            ts,
                            schedule,
                        )
                    )
            elif kind == "merged":
                merged_at = ended_at = ts
        _sla_outcomes(obs, created, first_reply, merged_at, sla_ms, schedule)
    return _ticket_windows(obs, windows)


def _deadlines(
    created: dict[str, Any], sla_ms: dict[str, int], schedule: WallSchedule | None
) -> list[tuple[str, int]]:
    target = sla_ms[created.get("priority") or "normal"]
    deadlines = [("ticket_sla_breach", created["ts"] + target)]
    if schedule is not None:
        deadlines.append(
            ("ticket_sla_breach_business", schedule.add_business_ms(created["ts"], target))
        )
    return deadlines


def _sla_decided(
    created: dict[str, Any] | None,
    first_reply: int | None,
    merged_at: int | None,
    ts: int,
    sla_ms: dict[str, int],
    schedule: WallSchedule | None,
) -> bool:
    """Whether every SLA outcome of the ticket is known at ``ts`` (its state may go)."""
    if created is None or merged_at is not None:
        return True
    return all(
        (first_reply is not None and first_reply <= dl) or ts > dl
        for _, dl in _deadlines(created, sla_ms, schedule)
    )


def _sla_outcomes(
    obs: list[tuple[int, str, str, float]],
    created: dict[str, Any] | None,
    first_reply: int | None,
    merged_at: int | None,
    sla_ms: dict[str, int],
    schedule: WallSchedule | None,
) -> None:
    if created is not None:
        for metric, deadline in _deadlines(created, sla_ms, schedule):
            if first_reply is not None and first_reply <= deadline:
                obs.append((first_reply, metric + ":achieved", created["channel"], 1))
            elif merged_at is None or merged_at > deadline:
                obs.append((deadline, metric + ":breached", created["channel"], 1))


def _ticket_windows(
    obs: list[tuple[int, str, str, float]], windows: Sequence[tuple[str, int, int]]
) -> dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]]:
    result: dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]] = {}
    for name, size, step in windows:
        ends: set[int] = set()
        for ts, *_ in obs:
            first = ts - ts % step + step
            ends.update(range(first, first + size, step))
        for end in sorted(ends):
            inside = [o for o in obs if end - size <= o[0] < end]
            for seg in {"all", *(f"channel={o[2]}" for o in inside)}:
                chosen = [o for o in inside if seg in ("all", f"channel={o[2]}")]
                for metric, value in _ticket_metrics(chosen).items():
                    result[(metric, name, seg, end)] = value
    return result


def _durations(
    metric: str,
    created: dict[str, Any],
    start: int,
    end: int,
    at: int,
    schedule: WallSchedule | None,
) -> list[tuple[int, str, str, float]]:
    out = [(at, metric, created["channel"], float(end - start))]
    if schedule is not None:
        out.append(
            (at, metric + "_business", created["channel"], float(schedule.business_ms(start, end)))
        )
    return out


def _ticket_metrics(chosen: list[tuple[int, str, str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    kinds = defaultdict(list)
    for _, kind, _, value in chosen:
        kinds[kind].append(value)
    for metric in [k for k in kinds if k.endswith("_seconds") or k.endswith("_business")]:
        ms = kinds[metric]
        stats = {
            "mean": sum(ms) / len(ms) / 1000,
            "p50": nearest_rank(ms, 0.5) / 1000,
            "p90": nearest_rank(ms, 0.9) / 1000,
            "max": max(ms) / 1000,
        }
        out[metric] = (stats["p50"], len(ms), stats)
    for metric in ("ticket_sla_breach", "ticket_sla_breach_business"):
        b, a = len(kinds[metric + ":breached"]), len(kinds[metric + ":achieved"])
        if a or b:
            out[metric] = (b / (a + b), a + b, {"breached": b, "achieved": a})
    reopened, solved = len(kinds["reopened"]), len(kinds["solved"])
    if reopened or solved:
        out["ticket_reopen"] = (
            reopened / solved if solved else None,
            solved,
            {"reopened": reopened, "solved": solved},
        )
    if kinds["complaint"]:
        out["ticket_complaints"] = (len(kinds["complaint"]), len(kinds["complaint"]), {})
    if kinds["created"]:
        out["tickets_created"] = (len(kinds["created"]), len(kinds["created"]), {})
    return out


# ----------------------------------------------------------------------------- customers
YEAR_MS = 365 * 86_400_000
MONTH_MS = 30 * 86_400_000
SUBSCRIPTION_TYPES = ("subscription_started", "subscription_changed", "subscription_cancelled")


def _micros(value: float) -> int:
    return round(value * 1_000_000)


def _channel(ev: dict[str, Any]) -> str:
    return ev.get("channel") or "unknown"


@dataclass
class _Customer:
    """One customer from its first event (or its return after being forgotten)."""

    segment: str
    active: bool = False
    mrr: int = 0
    was_active: bool = False
    cancelled_at: int | None = None
    #: (ts, active, mrr) after each of its events, in event-time order
    timeline: list[tuple[int, bool, int]] = field(default_factory=list)

    def before(self, t: int) -> tuple[bool, int]:
        """Its state just before ``t`` (events at ``t`` not applied)."""
        times = [ts for ts, _, _ in self.timeline]
        i = bisect.bisect_left(times, t)
        if i == 0:
            return False, 0
        _, active, mrr = self.timeline[i - 1]
        return active, mrr


def customer_finals(
    accepted: Iterable[dict[str, Any]],
    windows: Sequence[tuple[str, int, int]],
    upto_ms: int,
    gross_margin: float = 1.0,
    forget_after_ms: int = YEAR_MS,
) -> dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]]:
    """SPEC §3.4 by brute force, for every window end up to the final watermark ``upto_ms``.

    Each customer's events are replayed sorted by ``ts`` (ties: arrival) into a
    timeline of its states; a level at ``t`` is the sum over customers of their state
    just before ``t``.
    """
    events = sorted(accepted, key=lambda e: e["ts"])  # stable: ties keep arrival order
    counted: list[tuple[int, str, str, int]] = []  # (ts, channel, kind, amount)
    flows: list[tuple[int, str, str, int]] = []  # (ts, segment, kind, amount)
    customers: list[_Customer] = []
    current: dict[str, _Customer] = {}
    for ev in events:
        kind, ts = ev["type"], ev["ts"]
        if kind == "lead_created":
            counted.append((ts, _channel(ev), "leads", 1))
            continue
        if kind == "acquisition_spend":
            counted.append((ts, _channel(ev), "spend", _micros(ev["amount"])))
            counted.append((ts, _channel(ev), "spends", 1))
            continue
        if kind == "signed_up":
            counted.append((ts, _channel(ev), "signups", 1))
            if ev.get("referred_by") is not None:
                counted.append((ts, _channel(ev), "referred", 1))
            if ev.get("lead_id") is not None:
                counted.append((ts, _channel(ev), "converted", 1))
        c = current.get(ev["customer_id"])
        if c is not None and c.cancelled_at is not None and not c.active:
            if ts > c.cancelled_at + forget_after_ms:
                c = None  # forgotten: this is a new customer
        if c is None:
            c = current[ev["customer_id"]] = _Customer(_channel(ev))
            customers.append(c)
        if kind in ("subscription_started", "subscription_changed"):
            mrr = _micros(ev["mrr"])
            if not c.active:
                flows.append((ts, c.segment, "reactivated" if c.was_active else "new", mrr))
                flows.append((ts, c.segment, "started", 1))
                c.active, c.was_active, c.cancelled_at = True, True, None
            elif mrr > c.mrr:
                flows.append((ts, c.segment, "expansion", mrr - c.mrr))
            elif mrr < c.mrr:
                flows.append((ts, c.segment, "contraction", c.mrr - mrr))
            c.mrr = mrr
        elif kind == "subscription_cancelled" and c.active:
            flows.append((ts, c.segment, "churned", c.mrr))
            flows.append((ts, c.segment, "cancelled", 1))
            c.active, c.mrr, c.cancelled_at = False, 0, ts
        c.timeline.append((ts, c.active, c.mrr))
    segments = {"all"} | {f"channel={x[1]}" for x in counted + flows}
    segments |= {f"channel={c.segment}" for c in customers}

    def inside(seg: str, channel: str) -> bool:
        return seg == "all" or seg == f"channel={channel}"

    result: dict[tuple[str, str, str, int], tuple[float | None, int, dict[str, Any]]] = {}
    for name, size, step in windows:
        for seg in sorted(segments):
            mine = [c for c in customers if inside(seg, c.segment)]
            starts = [ts for ts, s, kind, _ in flows if kind == "started" and inside(seg, s)]
            ends: set[int] = set()
            if starts:
                first = min(starts) - min(starts) % step + step
                ends.update(range(first, upto_ms + 1, step))
            for ts, ch, _, _ in counted:
                if inside(seg, ch):
                    first = ts - ts % step + step
                    ends.update(e for e in range(first, first + size, step) if e <= upto_ms)
            for end in sorted(ends):
                w: Counter[str] = Counter()
                for ts, s, kind, amount in flows:
                    if end - size <= ts < end and inside(seg, s):
                        w[kind] += amount
                for ts, ch, kind, amount in counted:
                    if end - size <= ts < end and inside(seg, ch):
                        w[kind] += amount
                clv = None
                if any(ts < end for ts in starts):
                    start_states = [c.before(end - size) for c in mine]
                    end_states = [c.before(end) for c in mine]
                    a0 = sum(1 for active, _ in start_states if active)
                    m0 = sum(m for _, m in start_states)
                    a1 = sum(1 for active, _ in end_states if active)
                    m1 = sum(m for _, m in end_states)
                    money = {k: w[k] / 1e6 for k in ("new", "reactivated", "expansion")}
                    money.update({k: w[k] / 1e6 for k in ("contraction", "churned")})
                    result[("mrr", name, seg, end)] = (m1 / 1e6, a1, {"active": a1, **money})
                    churn = w["cancelled"] / a0 if a0 else None
                    result[("customer_churn", name, seg, end)] = (
                        churn,
                        a0,
                        {
                            "cancelled": w["cancelled"],
                            "started": w["started"],
                            "active_start": a0,
                            "active_end": a1,
                        },
                    )
                    nrr = None
                    if m0:
                        nrr = (m0 + w["expansion"] - w["contraction"] - w["churned"]) / m0
                    result[("revenue_churn", name, seg, end)] = (
                        (w["churned"] + w["contraction"]) / m0 if m0 else None,
                        a0,
                        {
                            "mrr_start": m0 / 1e6,
                            "mrr_end": m1 / 1e6,
                            "churned": money["churned"],
                            "contraction": money["contraction"],
                            "expansion": money["expansion"],
                            "new": money["new"],
                            "nrr": nrr,
                        },
                    )
                    arpa = (m1 / 1e6) / a1 if a1 else None
                    monthly = churn * MONTH_MS / size if churn is not None else None
                    if arpa is not None and monthly:
                        clv = arpa * gross_margin / monthly
                    stats = {"arpa": arpa, "monthly_churn": monthly, "gross_margin": gross_margin}
                    result[("clv", name, seg, end)] = (clv, a0, stats)
                signups = w["signups"]
                if signups:
                    result[("referral_rate", name, seg, end)] = (
                        w["referred"] / signups,
                        signups,
                        {"referred": w["referred"], "signups": signups},
                    )
                if w["converted"] or w["leads"]:
                    result[("lead_conversion", name, seg, end)] = (
                        w["converted"] / w["leads"] if w["leads"] else None,
                        w["leads"],
                        {"converted": w["converted"], "leads": w["leads"]},
                    )
                if w["spends"] or signups:
                    cac = (w["spend"] / 1e6) / signups if signups else None
                    stats = {"spend": w["spend"] / 1e6, "signups": signups}
                    result[("cac", name, seg, end)] = (cac, signups, stats)
                    ratio = clv / cac if clv is not None and cac else None
                    result[("ltv_cac", name, seg, end)] = (
                        ratio,
                        signups,
                        {"clv": clv, "cac": cac},
                    )
    return result
