"""The demo's traffic (``streams.replay.DemoTraffic``) and the synthetic generators' pace."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.events import Invalid, parse_cart, parse_survey, parse_ticket
from schemas.synthetic import CartTraffic, TicketTraffic
from streams.replay import DemoTraffic

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
        parse = (
            parse_ticket if "ticket_id" in ev else parse_cart if "cart_id" in ev else parse_survey
        )
        assert not isinstance(parse(orjson.dumps(ev)), Invalid), ev


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


def test_the_incident_stretches_what_support_had_yet_to_do() -> None:
    calm = DemoTraffic(rate=10, seed=5, ticket_pace=0.01)
    hit = DemoTraffic(rate=10, seed=5, ticket_pace=0.01)
    before_calm, before_hit = _run(calm, 600), _run(hit, 600)
    assert before_calm == before_hit
    now = T0 + 600 * 100
    hit.incident("app", now)
    old = {e["ticket_id"] for _, e in before_calm if "ticket_id" in e}
    later_calm = {
        e["event_id"]: e["ts"] for _, e in _run(calm, 20_000, now) if e.get("ticket_id") in old
    }
    later_hit = {
        e["event_id"]: e["ts"] for _, e in _run(hit, 20_000, now) if e.get("ticket_id") in old
    }
    # the open tickets' remaining events: ten times further from the incident, in order
    soon = {k: ts for k, ts in later_calm.items() if ts - now < 150_000}
    assert len(soon) > 10
    for event_id, ts in soon.items():
        assert later_hit[event_id] == now + (ts - now) * 10
    assert hit.carts.broken_channel == "app" and hit.surveys.incident_channel == "app"
