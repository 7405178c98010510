"""The demo's traffic (``agents/tools/replay.py`` ``DemoTraffic``) and the generators' pace."""

from __future__ import annotations

import math
import statistics

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.agents.tools.demo import DEMO_CART_PACE, DEMO_TICKET_PACE
from cxpulse.agents.tools.replay import CUSTOMER_TYPES, TICKET_STEPS, DemoTraffic
from cxpulse.agents.tools.traffic import (
    CartTraffic,
    SurveyTraffic,
    TicketTraffic,
    is_first_response,
)
from cxpulse.schemas.events import (
    Invalid,
    parse_cart,
    parse_customer,
    parse_survey,
    parse_ticket,
)

T0 = 1_795_046_400_000


def _run(traffic: DemoTraffic, steps: int, start: int = T0) -> list[tuple[int, dict]]:
    out = []
    for i in range(steps):
        now = start + i * 100
        out.extend((now, ev) for ev in traffic.step(now))
    return out


def test_steps_release_every_event_at_its_time_and_all_are_valid() -> None:
    sent = _run(DemoTraffic(rate=20, seed=3, ticket_pace=0.01, cart_pace=0.2), 3000)
    assert {("ticket_id" in e, "cart_id" in e, "survey_id" in e) for _, e in sent} >= {
        (True, False, False),
        (False, True, False),
        (False, False, True),
    }
    for now, ev in sent:
        assert ev["ts"] <= now  # nothing from the future
        if ev["type"] in CUSTOMER_TYPES:
            parse = parse_customer
        elif "ticket_id" in ev:
            parse = parse_ticket
        else:
            parse = parse_cart if "cart_id" in ev else parse_survey
        assert not isinstance(parse(orjson.dumps(ev)), Invalid), ev
    kinds = {e["type"] for _, e in sent}
    assert kinds >= CUSTOMER_TYPES  # SaaS customers too: leads, signups, plans, churn, spend


def test_the_incident_raises_churn_on_its_channel() -> None:
    """Customers of the incident's channel cancel far more after it than before."""
    traffic = DemoTraffic(rate=5, seed=3, ticket_pace=0.01, cart_pace=0.2)
    calm = _run(traffic, 6000)
    traffic.incident("ads", T0 + 6000 * 100)
    stormy = _run(traffic, 6000, T0 + 6000 * 100)

    def cancel_share(sent: list[tuple[int, dict]]) -> float:
        channel = {e["customer_id"]: e["channel"] for _, e in sent if e["type"] == "signed_up"}
        cancels = [e for _, e in sent if e["type"] == "subscription_cancelled"]
        ads = [e for e in cancels if channel.get(e["customer_id"]) == "ads"]
        return len(ads) / max(1, sum(1 for c in channel.values() if c == "ads"))

    assert cancel_share(stormy) > 2 * cancel_share(calm)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), pace=st.sampled_from([0.01, 0.2, 0.5]))
def test_pace_scales_every_duration_of_a_life(seed: int, pace: float) -> None:
    for slow, fast in (
        (TicketTraffic(seed=seed).lifecycle(T0), TicketTraffic(seed=seed, pace=pace).lifecycle(T0)),
        (CartTraffic(seed=seed).journey(T0), CartTraffic(seed=seed, pace=pace).journey(T0)),
    ):
        assert [e["type"] for e in slow] == [e["type"] for e in fast]
        for a, b in zip(slow, fast, strict=True):
            assert b["ts"] - T0 == round((a["ts"] - T0) * pace)


def _first_responses(sent: list[tuple[int, dict]]) -> list[tuple[int, int, str]]:
    """(reply ts, created ts, ticket) of every first response, in release order."""
    created = {e["ticket_id"]: e["ts"] for _, e in sent if e.get("type") == "created"}
    return [
        (e["ts"], created[e["ticket_id"]], e["ticket_id"])
        for _, e in sent
        if "ticket_id" in e and is_first_response(e)
    ]


def _p90(values: list[int]) -> int:
    """Nearest rank, as SPEC §3 computes percentiles."""
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


#: The demo's pace and rule (streams/cli.py): p90 of 5 minutes against the hour.
PACE = DEMO_TICKET_PACE
HOUR_STEPS = 36_000


def _demo_hour_then_incident(minutes_after: int) -> tuple[list[tuple[int, dict]], int]:
    traffic = DemoTraffic(rate=10, seed=7, ticket_pace=PACE, cart_pace=DEMO_CART_PACE)
    sent = _run(traffic, HOUR_STEPS)
    incident = T0 + HOUR_STEPS * 100
    traffic.incident("app", incident)
    sent += _run(traffic, minutes_after * 600, incident)
    return sent, incident


def _slowdown(replies: list[tuple[int, int, str]], end: int) -> tuple[float, int]:
    """The demo rule's view at a window end: 5-minute p90 / hourly p90, and n."""
    short = [r - c for r, c, _ in replies if end - 300_000 <= r < end]
    hour = [r - c for r, c, _ in replies if end - 3_600_000 <= r < end]
    return _p90(short) / _p90(hour), len(short)


def test_first_response_slowdown_would_fire_two_minutes_into_the_incident() -> None:
    """First responses count when the reply goes out (SPEC §3): the incident must make
    the replies that go out slow, not just the ones that will come later."""
    sent, incident = _demo_hour_then_incident(minutes_after=3)
    replies = _first_responses(sent)
    for minute in range(5, 60):  # a calm hour never looks like a slowdown
        ratio, n = _slowdown(replies, T0 + minute * 60_000)
        assert ratio < 1.4 and n >= 100, (minute, ratio, n)
    ratio, n = _slowdown(replies, incident + 60_000)
    assert ratio < 1.5  # a minute in, the window is mostly calm replies
    ratio, n = _slowdown(replies, incident + 120_000)
    assert ratio >= 1.5 and n >= 100, (ratio, n)  # the demo rule: +50 %, min_n 100


def test_in_the_incident_agents_answer_the_oldest_tickets_at_their_usual_pace() -> None:
    calm = DemoTraffic(rate=10, seed=5, ticket_pace=PACE)
    hit = DemoTraffic(rate=10, seed=5, ticket_pace=PACE)
    before = _run(calm, 600)
    assert before == _run(hit, 600)
    now = T0 + 600 * 100
    hit.incident("app", now)
    after_calm, after_hit = _run(calm, 3000, now), _run(hit, 3000, now)
    answered = [r for r in _first_responses(before + after_hit) if r[0] >= now]
    calm_replies = [r for r in _first_responses(before + after_calm) if r[0] >= now]
    # one reply per TICKET_STEPS, oldest ticket first, while the queue grows
    assert len(answered) == pytest.approx(3000 / TICKET_STEPS, abs=2)
    assert [c for _, c, _ in answered] == sorted(c for _, c, _ in answered)
    waits = [r - c for r, c, _ in answered]
    assert waits[-1] > 100_000 > 2 * _p90([r - c for r, c, _ in calm_replies])
    # the broken channel writes in: four times the tickets, the extra ones from app
    created = [e for _, e in after_hit if e.get("type") == "created"]
    assert len(created) == 4 * 3000 // TICKET_STEPS
    assert sum(e["channel"] == "app" for e in created) > 0.75 * len(created)
    # a ticket's life after its first response moves with it, in order
    life = _lives(after_hit)
    for _, _, ticket in answered:
        events = life[ticket]
        assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    for _, e in after_hit:
        assert not isinstance(parse_ticket(orjson.dumps(e)), Invalid) or "ticket_id" not in e


def _lives(sent: list[tuple[int, dict]]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for _, e in sent:
        if "ticket_id" in e:
            out.setdefault(e["ticket_id"], []).append(e)
    return out


def test_the_broken_checkout_fails_every_purchase_on_its_channel_from_the_incident_on() -> None:
    calm = DemoTraffic(rate=10, seed=5, ticket_pace=PACE, cart_pace=DEMO_CART_PACE)
    hit = DemoTraffic(rate=10, seed=5, ticket_pace=PACE, cart_pace=DEMO_CART_PACE)
    before = _run(calm, 1200)
    assert before == _run(hit, 1200)
    now = T0 + 1200 * 100
    hit.incident("app", now)
    after_calm, after_hit = _run(calm, 1200, now), _run(hit, 1200, now)
    bought = [e for _, e in after_calm if e["type"] == "purchased"]
    # carts that were already at the checkout when it broke do not buy either
    assert {e["cart_id"] for e in bought if e["channel"] == "app"} & {
        e["cart_id"] for _, e in before if e["type"] == "checkout_started"
    }
    assert not [e for _, e in after_hit if e["type"] == "purchased" and e["channel"] == "app"]
    assert [e for _, e in after_hit if e["type"] == "purchased" and e["channel"] == "web"]
    assert hit.carts.broken_channel == "app" and hit.surveys.incident_channel == "app"


def test_the_survey_story_does_not_depend_on_the_hour_it_starts() -> None:
    """Same seed, same offsets from the synthetic day's origin: the same answers, at any hour."""

    def answers(origin: int) -> list[tuple[str, str, int]]:
        traffic = SurveyTraffic(seed=3, day_origin_ms=origin)
        return [
            (e["channel"], e["question"], e["score"])
            for k in range(400)
            for e in traffic.events_at(origin + k * 60_000)
            if e["type"] == "answer"
        ]

    base = 1_764_547_200_000  # a UTC midnight
    assert answers(base) == answers(base + 7 * 3_600_000) == answers(base + 13 * 3_600_000 + 17)
    # the rhythm is real: the same origin moved by half a day changes the mood at each offset
    shifted = SurveyTraffic(seed=3, day_origin_ms=base)
    moved = [
        (e["channel"], e["question"], e["score"])
        for k in range(400)
        for e in shifted.events_at(base + 12 * 3_600_000 + k * 60_000)
        if e["type"] == "answer"
    ]
    assert moved != answers(base)


def test_survey_answers_of_a_response_correlate_with_the_overall_experience() -> None:
    """The demo shows SPEC §3.1's correlations: positive with nps and repurchase,
    negative with switch (a happy customer does not want to switch)."""
    traffic = SurveyTraffic(seed=5)
    responses: dict[str, dict[str, int]] = {}
    for i in range(3000):
        for ev in traffic.events_at(T0 + i * 1000):
            if ev["type"] == "answer":
                responses.setdefault(ev["response_id"], {})[ev["question"]] = ev["score"]
    r = {}
    for question in ("nps", "switch", "repurchase"):
        pairs = [
            (a["overall"], a[question])
            for a in responses.values()
            if {"overall", question} <= set(a)
        ]
        assert len(pairs) > 500
        r[question] = statistics.correlation(*zip(*pairs, strict=True))
    assert r["nps"] > 0.35 and r["repurchase"] > 0.35 and r["switch"] < -0.35, r
