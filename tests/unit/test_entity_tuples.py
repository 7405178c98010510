"""Open carts, tickets and customers are held as tuples, restored ones too: the same
values after a restart, their labels shared, and out of the cyclic collector's scans
once collected (a ticket's tuple holds its state dict, so only what it holds is)."""

from __future__ import annotations

import gc
from typing import Any

import orjson

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import PartitionProcessor
from cxpulse.streams.families.cart.family import CartFamily
from cxpulse.streams.families.customer.family import CustomerFamily
from cxpulse.streams.families.ticket.business_time import BusinessCalendar
from cxpulse.streams.families.ticket.family import TicketFamily
from tests.simulation import Simulation
from tests.unit import test_cart_family as carts
from tests.unit import test_customer_family as customers
from tests.unit import test_ticket_family as tickets

T0 = carts.T0
MINUTE = 60_000


def _feed(sim: Simulation, events: list[dict[str, Any]]) -> None:
    sim.feed([RawRecord(i, None, orjson.dumps(e), None) for i, e in enumerate(events)])


def _untracked_after_collections(values: list[Any]) -> bool:
    for _ in range(4):  # one level of nesting per collection
        gc.collect()
    return not any(gc.is_tracked(v) for v in values)


def _cart_events() -> list[dict[str, Any]]:
    out = []
    for c in range(5):
        cart = f"c{c}"
        out.append(carts.cart_event(0, cart, "item_added", T0 + c * MINUTE, 10.5, "web"))
        out.append(carts.cart_event(1, cart, "checkout_started", T0 + 30 * MINUTE, 12.0, "web"))
    # the watermark passes the first events only: applied sessions and queued events both
    out.append({"type": "heartbeat", "ts": T0 + 10 * MINUTE})
    return out


def test_carts_restored_are_the_tuples_they_were() -> None:
    family = CartFamily(carts.ABANDON, carts.RECOVERY)
    sim = Simulation(family, carts.CONFIG, carts.WINDOWS, carts.POLICY, carts.NOW)
    _feed(sim, _cart_events())
    held = dict(sim.proc.entities)
    assert held and all(type(v) is tuple for v in held.values())
    assert any(v[0] for v in held.values()) and any(v[2] for v in held.values())
    restored = PartitionProcessor.restore(
        CartFamily(carts.ABANDON, carts.RECOVERY), carts.CONFIG, 0, sim.table, carts.NOW
    )
    assert restored.entities == held
    values = list(restored.entities.values())
    sessions = [v[2] for v in values if v[2] is not None]
    queued = [item for v in values for item in v[0] or ()]
    assert len({id(s[0]) for s in sessions} | {id(i[4]) for i in queued}) == 1  # shared labels
    assert _untracked_after_collections(values)


def test_tickets_restored_are_the_tuples_they_were() -> None:
    def family() -> TicketFamily:
        return TicketFamily(tickets.SLA, BusinessCalendar(tickets.HOURS), 86_400_000)

    sim = Simulation(family(), tickets.CONFIG, tickets.WINDOWS, tickets.POLICY, tickets.NOW)
    events = [
        tickets.event(0, f"t{t}", "created", T0 + t * MINUTE, priority="high") for t in range(4)
    ]
    events += [
        tickets.event(1, f"t{t}", "agent_reply", T0 + 30 * MINUTE, via="human") for t in range(4)
    ]
    _feed(sim, [*events, {"type": "heartbeat", "ts": T0 + 10 * MINUTE}])
    held = dict(sim.proc.entities)
    assert held and all(type(v) is tuple for v in held.values())
    restored = PartitionProcessor.restore(family(), tickets.CONFIG, 0, sim.table, tickets.NOW)
    assert restored.entities == held
    values = list(restored.entities.values())
    states = [v[2] for v in values if v[2] is not None]
    assert states and len({id(st["lb"]) for st in states}) == 1  # shared labels
    # the entity tuple itself stays tracked (CPython never untracks a tuple holding a
    # dict): one object per ticket for a collection to visit, what it holds untracked
    assert _untracked_after_collections([*(v[0] for v in values), *states])


def test_customers_restored_are_the_tuples_they_were() -> None:
    def family() -> CustomerFamily:
        return CustomerFamily(customers.MARGIN, customers.FORGET)

    c = customers
    sim = Simulation(family(), c.CONFIG, c.WINDOWS, c.POLICY, c.NOW)
    events = [
        c.event(k, "subscription_started", T0 + k * MINUTE, customer_id=f"u{k}", mrr=10 + k)
        for k in range(4)
    ]
    events += [
        c.event(10 + k, "subscription_changed", T0 + 30 * MINUTE, customer_id=f"u{k}", mrr=50)
        for k in range(4)
    ]
    _feed(sim, [*events, {"type": "heartbeat", "ts": T0 + 10 * MINUTE}])
    held = dict(sim.proc.entities)
    assert held and all(type(v) is tuple and v[0] and v[2] for v in held.values())
    restored = PartitionProcessor.restore(family(), c.CONFIG, 0, sim.table, c.NOW)
    assert restored.entities == held
    values = list(restored.entities.values())
    labels = {id(v[2][0]) for v in values} | {id(item[4]) for v in values for item in v[0]}
    assert len(labels) == 1  # shared
    assert _untracked_after_collections(values)
