"""Ticket lifecycles (SPEC §3.3) through the real engine and merge stage, against the oracle.

Property: random tickets, arriving in any order within the lateness, give the
oracle's final records (counts and ratios exactly; percentiles within 1 %), in
calendar and business time. Examples pin the SLA edges.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.ticket.business_time import BusinessCalendar
from cxpulse.streams.families.ticket.family import TicketFamily
from cxpulse.streams.settings import BusinessHours
from cxpulse.streams.watermarks import TimePolicy
from cxpulse.streams.windows import parse_window
from tests.oracle import Produced, WallSchedule, classify, ticket_finals
from tests.simulation import Simulation

LATENESS = 120_000
HOUR = 3_600_000
SLA = {"urgent": HOUR, "high": 4 * HOUR, "normal": 8 * HOUR, "low": 24 * HOUR}
POLICY = TimePolicy(LATENESS, 10**12, 300_000)
WINDOWS = tuple(parse_window(w) for w in ("1h/15m", "24h/1h"))
CONFIG = EngineConfig(
    "ticket", tuple(sorted({w.step_ms for w in WINDOWS})), POLICY, 86_400_000, ("channel",), 20
)
HOURS = BusinessHours(
    timezone="Europe/Madrid",
    hours=(*tuple((d, 9 * 60, 18 * 60) for d in range(4)), (4, 9 * 60, 15 * 60)),
    holidays=(dt.date(2026, 11, 20),),
)
SCHEDULE = WallSchedule(
    "Europe/Madrid",
    {d: [(540, 1080)] for d in range(4)} | {4: [(540, 900)]},
    {dt.date(2026, 11, 20)},
)
T0 = 1_795_046_400_000  # 2026-11-18 (a Wednesday) 00:00 UTC
NOW = 1_900_000_000_000
KINDS = ("agent_reply", "agent_reply", "solved", "reopened", "closed", "customer_reply", "merged")


def event(n: int, ticket: str, kind: str, ts: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"{ticket}-{n}", "type": kind, "ts": ts, "ticket_id": ticket, **fields}


def run(items: Sequence[dict[str, Any]], cuts: Sequence[int] = (), business: bool = True) -> Any:
    family = TicketFamily(SLA, BusinessCalendar(HOURS) if business else None, 86_400_000)
    sim = Simulation(family, CONFIG, WINDOWS, POLICY, NOW)
    closing = {"type": "heartbeat", "ts": T0 + 40 * 86_400_000}
    raw = [RawRecord(i, None, orjson.dumps(it), None) for i, it in enumerate([*items, closing])]
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    for a, b in pairwise(points):
        if b > a:
            sim.feed(raw[a:b])
    return sim


def oracle(items: Sequence[dict[str, Any]], business: bool = True) -> dict[str, list[Any]]:
    accepted = classify([Produced(0, it) for it in items], 1, LATENESS).accepted
    want = ticket_finals(
        accepted,
        [(w.name, w.size_ms, w.step_ms) for w in WINDOWS],
        SLA,
        SCHEDULE if business else None,
    )
    return {f"{m}|{w}|{s}|{end}": [v, n, st] for (m, w, s, end), (v, n, st) in want.items()}


def close_enough(metric: str, name: str, got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got == want
    if metric.endswith(("_seconds", "_business")) and name in ("p50", "p90", "value"):
        return abs(got - want) <= 0.01 * abs(want) + 1e-9  # the sketch's 1 %
    return abs(got - want) <= 1e-9 * max(1.0, abs(want))


def assert_equal(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    assert set(got) == set(want), sorted(set(got) ^ set(want))[:5]
    for key, bodies in got.items():
        metric = key.split("|")[0]
        for body in bodies:
            assert close_enough(metric, "value", body[0], want[key][0]), (key, body, want[key])
            assert body[1] == want[key][1], (key, body, want[key])
            for name, value in want[key][2].items():
                assert close_enough(metric, name, body[2][name], value), (key, name, body, value)


@st.composite
def ticket_stream(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for t in range(draw(st.integers(1, 4))):
        ts = T0 + draw(st.integers(0, 96)) * 30 * 60_000
        tid = f"t{t}"
        if draw(st.booleans()) or t == 0:
            priority = draw(st.sampled_from(sorted(SLA)))
            tags = draw(st.sampled_from([[], ["complaint"], ["COMPLAINT", "x"], ["billing"]]))
            events.append(
                event(
                    0,
                    tid,
                    "created",
                    ts,
                    channel=draw(st.sampled_from(["web", "app"])),
                    priority=priority,
                    tags=tags,
                )
            )
        for n in range(1, draw(st.integers(1, 6))):
            ts += draw(st.sampled_from([0, 60_000, HOUR, 4 * HOUR, 8 * HOUR, 20 * HOUR]))
            kind = draw(st.sampled_from(KINDS))
            fields: dict[str, Any] = {}
            if kind == "agent_reply":
                fields = draw(
                    st.sampled_from([{}, {"via": "bot"}, {"public": False}, {"via": "automation"}])
                )
            if kind == "merged":
                fields = {"into": "t0"}
            events.append(event(n, tid, kind, ts, **fields))
    rng = random.Random(draw(st.integers(0, 1000)))
    events.sort(key=lambda e: e["ts"] + rng.randrange(LATENESS))
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticket_stream(), st.lists(st.integers(0, 100), max_size=5))
def test_any_arrival_order_gives_the_oracles_finals(items: list[Any], cuts: list[int]) -> None:
    assert_equal(run(items, cuts).finals, oracle(items))


def _sla(sim: Any, metric: str = "ticket_sla_breach") -> tuple[int, int]:
    day = [v[0][2] for k, v in sim.finals.items() if k.startswith(f"{metric}|24h/1h|all|")]
    return max((d["breached"] for d in day), default=0), max(
        (d["achieved"] for d in day), default=0
    )


def test_a_reply_exactly_at_the_deadline_is_achieved() -> None:
    items = [
        event(0, "t", "created", T0, priority="urgent"),
        event(1, "t", "agent_reply", T0 + HOUR),
    ]
    sim = run(items, business=False)
    assert_equal(sim.finals, oracle(items, business=False))
    assert _sla(sim) == (0, 1)


def test_no_reply_by_the_deadline_is_a_breach_attributed_at_the_deadline() -> None:
    items = [
        event(0, "t", "created", T0, priority="urgent"),
        event(1, "t", "solved", T0 + 10 * 60_000),
        event(2, "t", "agent_reply", T0 + HOUR + 1),
    ]
    sim = run(items, business=False)
    assert_equal(sim.finals, oracle(items, business=False))
    assert _sla(sim) == (1, 0)
    quarter = [
        k
        for k, v in sim.finals.items()
        if k.startswith("ticket_sla_breach|1h/15m|all|") and v[0][2]["breached"]
    ]
    ends = sorted(int(k.rsplit("|", 1)[1]) for k in quarter)
    assert ends[0] == T0 + HOUR + 15 * 60_000  # the window holding the deadline, not the reply


def test_merged_before_the_deadline_without_a_reply_has_no_sla_outcome() -> None:
    items = [
        event(0, "t", "created", T0, priority="urgent"),
        event(1, "t", "merged", T0 + HOUR, into="u"),
        event(2, "t", "agent_reply", T0 + HOUR + 5),
    ]
    sim = run(items, business=False)
    assert_equal(sim.finals, oracle(items, business=False))
    assert _sla(sim) == (0, 0)
    assert not any(k.startswith("ticket_first_response") for k in sim.finals)


def test_a_reply_outside_hours_to_a_ticket_opened_outside_hours_takes_no_business_time() -> None:
    night = T0 + 22 * HOUR  # 23:00 in Madrid
    items = [
        event(0, "t", "created", night, priority="low"),
        event(1, "t", "agent_reply", night + 2 * HOUR),
    ]
    sim = run(items)
    assert_equal(sim.finals, oracle(items))
    business = [
        v[0]
        for k, v in sim.finals.items()
        if k.startswith("ticket_first_response_seconds_business|24h/1h|all|")
    ]
    assert business and all(b[2]["max"] == 0 for b in business)


def test_a_ticket_never_closed_is_forgotten_once_silent_for_forget_after() -> None:
    """Solved and never closed (or simply abandoned), a ticket would be kept for ever;
    ``tickets.forget_after`` past its last event it is dropped, so memory stays flat."""
    forget = 2 * 24 * HOUR
    family = TicketFamily(SLA, None, 86_400_000, forget_after_ms=forget)
    proc = PartitionProcessor(family, CONFIG, 0, NOW)
    solved_at = T0 + HOUR
    opened_at = T0 + 2 * HOUR
    items: list[dict[str, Any]] = [
        event(0, "t", "created", T0, priority="urgent"),
        event(1, "t", "agent_reply", T0 + 600_000),
        event(2, "t", "solved", solved_at),
        event(0, "u", "created", opened_at, priority="low"),  # open, never answered
    ]

    def feed(offset: int, *evs: dict[str, Any]) -> None:
        raw = [RawRecord(offset + i, None, orjson.dumps(ev), None) for i, ev in enumerate(evs)]
        proc.process(raw, NOW, None)

    def beat(offset: int, watermark: int) -> None:
        feed(offset, {"type": "heartbeat", "ts": watermark + LATENESS})

    feed(0, *items)
    beat(4, solved_at + forget)  # t's bound, not passed
    assert set(proc.entities) == {"t", "u"}
    beat(5, solved_at + forget + 1)
    assert set(proc.entities) == {"u"}
    assert proc.gauges[("cx_tickets_open", "all")] == 1
    beat(6, opened_at + forget + 1)
    assert not proc.entities
    assert proc.gauges[("cx_tickets_open", "all")] == 0
