"""The open-entity gauges (``cx_carts_open``, ``cx_tickets_open``) against a brute-force count.

Property: random carts and tickets whose events arrive out of order within the
lateness, with duplicates and late events, fed in random batches through the
real engine; after every batch the processor's gauge equals the oracle's count
of entities left open by the events accepted so far, applied in event-time
order, abandonment alone waiting for the watermark (docs/gauges.md). A
processor restored from its table after any batch exports the same counts.
Examples pin what the rule changes: a purchase, a solve, a close or a merge
takes an entity out of the gauge as it arrives, not a lateness later.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpulse.agents.worker.runtime import Runtime
from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.cart.family import CartFamily
from cxpulse.streams.families.ticket.family import TicketFamily
from cxpulse.streams.family import Family
from cxpulse.streams.settings import load_settings
from cxpulse.streams.watermarks import TimePolicy
from tests.oracle import Produced, open_now

LATENESS = 120_000
MINUTE = 60_000
HOUR = 3_600_000
ABANDON = 30 * MINUTE
RECOVERY = 3 * HOUR
SLA = {"urgent": HOUR, "high": 4 * HOUR, "normal": 8 * HOUR, "low": 24 * HOUR}
POLICY = TimePolicy(LATENESS, 10**12, 300_000)
T0 = 1_795_046_400_000
NOW = 1_900_000_000_000
CART_TYPES = ("item_added", "item_added", "item_removed", "checkout_started", "purchased")
TICKET_TYPES = ("agent_reply", "solved", "reopened", "closed", "customer_reply", "merged")
GAUGE = {"cart": "cx_carts_open", "ticket": "cx_tickets_open"}


def _config(topic: str) -> EngineConfig:
    return EngineConfig(topic, (MINUTE, 15 * MINUTE), POLICY, 86_400_000, ("channel",), 20)


def _family(kind: str) -> Family:
    if kind == "cart":
        return CartFamily(ABANDON, RECOVERY)
    return TicketFamily(SLA, None, 86_400_000)


def _exported(proc: PartitionProcessor, kind: str) -> Counter[str]:
    return Counter({lb: n for (name, lb), n in proc.gauges.items() if name == GAUGE[kind] and n})


class Feeder:
    """One partition's processor and table, fed batch by batch as the worker does."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.table: dict[str, bytes] = {}
        self.proc = PartitionProcessor(_family(kind), _config(kind), 0, NOW)
        self.fed: list[Produced] = []

    def feed(self, items: Sequence[dict[str, Any]]) -> None:
        offset = len(self.fed)
        raw = [RawRecord(offset + i, None, orjson.dumps(it), None) for i, it in enumerate(items)]
        out = self.proc.process(raw, NOW, None)
        for key, value in [*out.writes, *([out.commit] if out.commit else [])]:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        self.fed.extend(Produced(0, it) for it in items)

    def restart(self) -> None:
        self.proc = PartitionProcessor.restore(
            _family(self.kind), _config(self.kind), 0, self.table, NOW
        )

    def check(self) -> None:
        want = open_now(self.fed, 1, LATENESS, self.kind, ABANDON)
        assert _exported(self.proc, self.kind) == +want, (len(self.fed), self.proc.ack)


def _arrival(events: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Out of order within the lateness, a duplicate, a late copy, a heartbeat now and then."""
    events.sort(key=lambda e: e["ts"] + rng.randrange(LATENESS))
    out: list[dict[str, Any]] = []
    for ev in events:
        out.append(ev)
        roll = rng.random()
        if roll < 0.05:
            out.append(dict(ev))
        elif roll < 0.1:
            out.append({**ev, "event_id": ev["event_id"] + "-late", "ts": ev["ts"] - HOUR})
        elif roll < 0.2:
            out.append({"type": "heartbeat", "ts": ev["ts"] + rng.randrange(ABANDON)})
    return out


@st.composite
def cart_traffic(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for c in range(draw(st.integers(1, 6))):
        ts = T0 + draw(st.integers(0, 60)) * MINUTE
        for n in range(draw(st.integers(1, 7))):
            gap = draw(st.sampled_from([0, 5_000, MINUTE, 10 * MINUTE, ABANDON, 45 * MINUTE]))
            ts += gap
            events.append(
                {
                    "event_id": f"k{c}-{n}",
                    "type": draw(st.sampled_from(CART_TYPES)),
                    "ts": ts,
                    "cart_id": f"k{c}",
                    "channel": draw(st.sampled_from(["web", "app"])),
                    "cart_value": 1.0,
                }
            )
    return _arrival(events, random.Random(draw(st.integers(0, 10_000))))


@st.composite
def ticket_traffic(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for t in range(draw(st.integers(1, 6))):
        ts = T0 + draw(st.integers(0, 96)) * 10 * MINUTE
        tid = f"t{t}"
        if draw(st.integers(0, 4)):
            channel = draw(st.sampled_from(["web", "app"]))
            events.append(
                {"event_id": f"{tid}-0", "type": "created", "ts": ts, "ticket_id": tid}
                | {"channel": channel, "priority": draw(st.sampled_from(sorted(SLA)))}
            )
        for n in range(1, draw(st.integers(1, 7))):
            ts += draw(st.sampled_from([0, 5_000, MINUTE, 10 * MINUTE, HOUR]))
            kind = draw(st.sampled_from(TICKET_TYPES))
            ev = {"event_id": f"{tid}-{n}", "type": kind, "ts": ts, "ticket_id": tid}
            if kind == "merged":
                ev["into"] = "t0"
            events.append(ev)
    return _arrival(events, random.Random(draw(st.integers(0, 10_000))))


def _run(kind: str, items: list[dict[str, Any]], cuts: list[int], restart_at: int) -> None:
    feeder = Feeder(kind)
    points = sorted({c % (len(items) + 1) for c in cuts} | {0, len(items)})
    for i, (a, b) in enumerate(pairwise(points)):
        feeder.feed(items[a:b])
        feeder.check()
        if i == restart_at:
            feeder.restart()
            feeder.check()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cart_traffic(), st.lists(st.integers(0, 200), max_size=12), st.integers(0, 6))
def test_open_carts_after_every_batch_equal_the_brute_force_count(
    items: list[dict[str, Any]], cuts: list[int], restart_at: int
) -> None:
    _run("cart", items, cuts, restart_at)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticket_traffic(), st.lists(st.integers(0, 200), max_size=12), st.integers(0, 6))
def test_open_tickets_after_every_batch_equal_the_brute_force_count(
    items: list[dict[str, Any]], cuts: list[int], restart_at: int
) -> None:
    _run("ticket", items, cuts, restart_at)


def test_a_purchase_closes_the_cart_as_it_arrives() -> None:
    feeder = Feeder("cart")
    added = {"event_id": "a", "type": "item_added", "ts": T0, "cart_id": "k", "cart_value": 5.0}
    feeder.feed([added])
    assert _exported(feeder.proc, "cart")["all"] == 1
    bought = {**added, "event_id": "b", "type": "purchased", "ts": T0 + MINUTE}
    feeder.feed([bought])  # the watermark (T0 + 1 min - lateness) has not passed it
    assert feeder.proc.watermark is not None and feeder.proc.watermark < bought["ts"]
    assert _exported(feeder.proc, "cart")["all"] == 0
    feeder.check()


def test_solved_closed_and_merged_close_the_ticket_as_they_arrive() -> None:
    feeder = Feeder("ticket")
    for n, tid in enumerate("abc"):
        feeder.feed([{"event_id": f"{tid}0", "type": "created", "ts": T0 + n, "ticket_id": tid}])
    assert _exported(feeder.proc, "ticket")["all"] == 3
    for n, (tid, kind) in enumerate((("a", "solved"), ("b", "closed"), ("c", "merged"))):
        ev = {"event_id": f"{tid}1", "type": kind, "ts": T0 + MINUTE + n, "ticket_id": tid}
        feeder.feed([ev | ({"into": "a"} if kind == "merged" else {})])
        assert _exported(feeder.proc, "ticket")["all"] == 2 - n
        feeder.check()
    reopen = {"event_id": "a2", "type": "reopened", "ts": T0 + 2 * MINUTE, "ticket_id": "a"}
    feeder.feed([reopen])
    assert _exported(feeder.proc, "ticket")["all"] == 1
    feeder.check()


def test_a_close_arriving_before_an_earlier_reopen_still_closes_the_ticket() -> None:
    """Event-time order, not arrival order: the reopen at 2 min comes before the close at 3."""
    feeder = Feeder("ticket")
    base = {"ticket_id": "t"}
    feeder.feed([{"event_id": "0", "type": "created", "ts": T0, **base}])
    feeder.feed([{"event_id": "1", "type": "solved", "ts": T0 + MINUTE, **base}])
    feeder.feed([{"event_id": "3", "type": "closed", "ts": T0 + 3 * MINUTE, **base}])
    feeder.feed([{"event_id": "2", "type": "reopened", "ts": T0 + 2 * MINUTE, **base}])
    assert _exported(feeder.proc, "ticket")["all"] == 0
    feeder.check()


def _cart_table(partition: int, carts: int) -> dict[str, bytes]:
    """The table of a cart partition with ``carts`` open carts and one converted
    (so it holds a bucket too), as its changelog has it."""
    runtime = Runtime(load_settings(env={}), "partials")
    proc = PartitionProcessor(
        runtime.families["cart"], runtime.engine_config("cart"), partition, NOW
    )
    items: list[dict[str, Any]] = [
        {"event_id": f"{partition}-{i}", "type": "item_added", "ts": T0 + i, "cart_id": f"c{i}"}
        | {"cart_value": 1.0, "channel": "web"}
        for i in range(carts)
    ]
    bought = {"event_id": "p", "type": "purchased", "ts": T0, "cart_id": "p", "cart_value": 2.0}
    items += [bought, {"type": "heartbeat", "ts": T0 + 10 * MINUTE}]  # applies the purchase
    table: dict[str, bytes] = {}
    out = proc.process(
        [RawRecord(i, None, orjson.dumps(it), None) for i, it in enumerate(items)], NOW, None
    )
    assert out.commit is not None and out.snapshots
    table.update((k, v) for k, v in [*out.writes, out.commit] if v is not None)
    return table


def test_a_worker_exports_restored_partitions_before_any_batch_arrives() -> None:
    """After a restart or a takeover no record may come (the end of a stream): the
    partitions the worker was assigned count in its open gauges all the same."""
    runtime = Runtime(load_settings(env={}), "partials")
    runtime.processor("cart", 5, {})  # made during a revocation: partition 5 is another's now
    tables = {("cart", 0): _cart_table(0, 3), ("cart", 1): _cart_table(1, 2)}
    runtime.restore_sources(tables)
    assert set(runtime.processors) == {("cart", 0), ("cart", 1)}
    assert runtime.open_gauges() == {"cx_carts_open": {"all": 5, "web": 5}}
    # the first batch of a partition restored ahead still announces its state to the merge stage
    first = runtime.process_source("cart", 0, [], tables[("cart", 0)], tick=True)
    again = runtime.process_source("cart", 0, [], tables[("cart", 0)], tick=True)
    partials = [s for s in first.sends if s[0] == "partials" and s[1] is not None]
    assert partials, "the live buckets of a restored partition were not re-sent"
    assert not [s for s in again.sends if s[0] == "partials" and s[1] is not None]
    runtime.restore_sources({("cart", 1): tables[("cart", 1)]})  # partition 0 moved away
    assert runtime.open_gauges() == {"cx_carts_open": {"all": 2, "web": 2}}
