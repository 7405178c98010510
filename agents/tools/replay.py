"""Producing events: recorded JSONL files (``cxpulse replay``) and live synthetic traffic.

A JSONL line is either a bare event (routed by its ``type`` to the survey, cart
or ticket topic and keyed by its entity id, as SPEC §1 keys them) or a recorded
Kafka record ``{"topic": ..., "key": ..., "value": ..., "partition": ...}``
whose value may be an object or raw text (so invalid records replay too).
After the file, a heartbeat goes to every partition of every input topic at
``max ts + allowed lateness + largest window``, so every window closes.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from cxpulse.agents.kafka.security import client_options
from cxpulse.agents.tools.traffic import (
    ACQUISITION as CUSTOMER_CHANNELS,
)
from cxpulse.agents.tools.traffic import (
    CartTraffic,
    CustomerTraffic,
    SurveyTraffic,
    TicketTraffic,
    is_first_response,
)
from cxpulse.schemas.event_types import CART_TYPES, CUSTOMER_TYPES, TICKET_TYPES
from cxpulse.schemas.timestamps import parse_ts
from cxpulse.streams.settings import BrokerSettings, Settings

#: demo customer lives: one per this many steps; their days last this many ms of demo time
CUSTOMER_STEPS = 5
CUSTOMER_PACE = 30_000 / 86_400_000  # a customer's day passes in 30 s


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None


def route(event: Mapping[str, Any], settings: Settings) -> tuple[str, str | None]:
    """The input topic and key of a bare event."""
    t = settings.topics
    kind = event.get("type")
    if kind in CART_TYPES:
        return t.cart, _str(event.get("cart_id"))
    if kind in TICKET_TYPES:
        return t.ticket, _str(event.get("ticket_id"))
    if kind in CUSTOMER_TYPES:  # keys of SPEC §1.5
        if kind == "lead_created":
            return t.customer, _str(event.get("lead_id"))
        if kind == "acquisition_spend":
            return t.customer, _str(event.get("channel"))
        return t.customer, _str(event.get("customer_id"))
    return t.survey, _str(event.get("customer_id"))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_jsonl(path: Path, settings: Settings) -> Iterator[tuple[Outgoing, int | None]]:
    """Records of a JSONL file, with their event time when readable."""
    with path.open("rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            obj = orjson.loads(line)
            if isinstance(obj, dict) and "topic" in obj and "value" in obj:
                value = obj["value"]
                raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
                key = obj.get("key")
                ts = parse_ts(value.get("ts")) if isinstance(value, dict) else None
                yield (
                    Outgoing(
                        obj["topic"], key.encode() if key else None, raw, obj.get("partition")
                    ),
                    ts,
                )
            else:
                topic, key = route(obj, settings)
                yield Outgoing(topic, key.encode() if key else None, line), parse_ts(obj.get("ts"))


def closing_heartbeat_ts(max_ts: int, settings: Settings) -> int:
    """An event time at which every window holding ``max_ts`` is final."""
    largest = max(w.size_ms + w.step_ms for w in settings.windows)
    return max_ts + settings.time.allowed_lateness_ms + largest


def heartbeats(ts: int, settings: Settings, topics: Iterable[str]) -> Iterator[Outgoing]:
    value = orjson.dumps({"type": "heartbeat", "ts": ts})
    for topic in topics:
        for p in range(settings.topics.partitions):
            yield Outgoing(topic, None, value, p)


async def produce(
    bootstrap: str,
    records: Iterable[Outgoing],
    *,
    window: int = 5000,
    broker: BrokerSettings | None = None,
    **options: Any,
) -> int:
    """Produce in order, at most ``window`` records unacknowledged; returns how many.

    ``options`` go to the aiokafka producer (default ``linger_ms=5, acks="all"``), with
    ``broker``'s security.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **{"linger_ms": 5, "acks": "all", **client_options(broker), **options},
    )
    await producer.start()
    n = 0
    try:
        pending = []
        for rec in records:
            pending.append(
                await producer.send(rec.topic, rec.value, key=rec.key, partition=rec.partition)
            )
            n += 1
            if len(pending) >= window:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n


async def replay_file(path: Path, bootstrap: str, settings: Settings, *, close: bool = True) -> int:
    """Produce a JSONL file in order, then (``close``) the closing heartbeats."""
    max_ts: int | None = None
    records: list[Outgoing] = []
    for rec, ts in read_jsonl(path, settings):
        records.append(rec)
        if ts is not None:
            max_ts = ts if max_ts is None else max(max_ts, ts)
    if close and max_ts is not None:
        t = settings.topics
        records.extend(heartbeats(closing_heartbeat_ts(max_ts, settings), settings, t.inputs))
    return await produce(bootstrap, records, broker=settings.broker)


#: Steps (of 100 ms) between two tickets: a ticket every two seconds.
TICKET_STEPS = 20
#: In an incident, the broken channel's customers also write in at these steps of
#: each ``TICKET_STEPS``: four times the usual tickets.
FLOOD_STEPS = (5, 10, 15)


#: The hour of the synthetic day at which ``generate``'s live traffic starts.
LIVE_START_HOUR = 12


class DemoTraffic:
    """Events of every input topic as the clock moves: surveys, carts, tickets, customers.

    ``step(now)`` advances one tenth of a second of traffic and returns the events
    whose time has come (later events of a cart or ticket wait in a heap). The
    same steps serve live traffic and a backfill of history, so the two match.

    In calm times each ticket's first response comes after its own drawn delay.
    From ``incident`` on, support is a queue: customers of the broken channel write
    in, quadrupling the tickets, while agents still answer one ticket per
    ``TICKET_STEPS``, oldest first. So the replies that go out are the ones that
    waited longest, and the wait grows by a second per second; first responses are
    attributed at the reply (SPEC §3), so this is what moves their p90 at once.
    """

    def __init__(
        self,
        rate: float,
        seed: int,
        ticket_pace: float,
        cart_pace: float = 1.0,
        day_origin_ms: int = 0,
        *,
        customers: bool = True,
    ) -> None:
        self.rate = rate
        #: whether SaaS customer lives (SPEC §1.5) are part of the traffic
        self.with_customers = customers
        self.surveys = SurveyTraffic(seed=seed, day_origin_ms=day_origin_ms)
        self.carts = CartTraffic(seed=seed, pace=cart_pace)
        self.tickets = TicketTraffic(seed=seed, pace=ticket_pace)
        self.customers = CustomerTraffic(seed=seed, pace=CUSTOMER_PACE)
        self.incident_channel: str | None = None
        self._future: list[tuple[int, int, dict[str, Any]]] = []  # (ts, n, event) heap
        #: created ts of each ticket whose first response is still in ``_future``
        self._unanswered: dict[str, int] = {}
        #: in an incident: (created ts, n, [first response and all after it]) heap
        self._backlog: list[tuple[int, int, list[dict[str, Any]]]] = []
        self._answers = 0.0  # replies the agents can send now (one per TICKET_STEPS)
        self._n = 0
        self._tick = 0

    def incident(self, channel: str, now: int) -> None:
        """The demo's incident: ``channel``'s scores collapse and its checkout breaks
        (no purchase there goes through, also for carts already at the checkout); its
        customers write to support, and support answers from a queue, oldest first,
        at its usual pace: every ticket still waiting for a first response joins it."""
        if self.incident_channel is not None:
            return
        self.incident_channel = channel
        self.surveys.incident_channel = channel
        self.carts.broken_channel = channel
        # SaaS customers who came through the incident's channel churn from now on: new
        # ones within days (demo seconds), and every scheduled life of one ends soon
        self.customers.churn_channel = channel
        self._churn_scheduled(channel, now)
        tails: dict[str, list[dict[str, Any]]] = {}
        kept = []
        for item in self._future:
            event = item[2]
            if event.get("ticket_id") in self._unanswered:
                tails.setdefault(event["ticket_id"], []).append(event)
            else:
                kept.append(item)
        heapq.heapify(kept)
        self._future = kept
        for ticket, events in tails.items():
            head, tail = _split_at_first_response(sorted(events, key=lambda e: e["ts"]))
            self._push(head)
            self._enqueue(self._unanswered.pop(ticket), tail)

    def _churn_scheduled(self, channel: str, now: int) -> None:
        """Customers of ``channel`` with events still to come cancel within a minute."""
        segment: dict[str, str] = {}
        for _, _, event in self._future:
            if event.get("type") == "signed_up":
                segment[event["customer_id"]] = event["channel"]
        cancels = []
        for i, customer in enumerate(sorted(c for c, ch in segment.items() if ch == channel)):
            cancels.append(
                {
                    "event_id": f"{customer}-incident",
                    "type": "subscription_cancelled",
                    "ts": now + 1_000 * (i % 60),
                    "customer_id": customer,
                }
            )
        self._push(cancels)

    def _push(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            self._n += 1
            heapq.heappush(self._future, (event["ts"], self._n, event))

    def _enqueue(self, created: int, tail: list[dict[str, Any]]) -> None:
        self._n += 1
        heapq.heappush(self._backlog, (created, self._n, tail))

    def _push_ticket(self, events: list[dict[str, Any]]) -> None:
        """A new ticket: in calm times its whole life is scheduled; in an incident
        its first response and what follows wait in the queue."""
        created = events[0]["ts"]
        head, tail = _split_at_first_response(events)
        if not tail:  # merged before any human reply
            self._push(head)
        elif self.incident_channel is None:
            self._push(events)
            self._unanswered[events[0]["ticket_id"]] = created
        else:
            self._push(head)
            self._enqueue(created, tail)

    def _answer_backlog(self, now: int) -> None:
        """Agents answer the oldest waiting tickets, one per ``TICKET_STEPS``: each
        answered ticket's first response goes out now, the rest of its life shifted
        with it."""
        self._answers = min(self._answers + 1 / TICKET_STEPS, 1.0 + 1 / TICKET_STEPS)
        while self._answers >= 1.0 and self._backlog:
            _, _, tail = heapq.heappop(self._backlog)
            shift = now - tail[0]["ts"]
            for event in tail:
                event["ts"] += shift
            self._push(tail)
            self._answers -= 1.0

    def _tickets(self, now: int) -> None:
        if self._tick % TICKET_STEPS == 0:
            self._push_ticket(self.tickets.lifecycle(now))
        if self.incident_channel is not None:
            if self._tick % TICKET_STEPS in FLOOD_STEPS:
                self._push_ticket(
                    self.tickets.lifecycle(now, self.incident_channel, ("complaint", "checkout"))
                )
            self._answer_backlog(now)

    def _due(self, now: int) -> list[dict[str, Any]]:
        """Events whose time has come; while a checkout is broken, its purchases fail."""
        due: list[dict[str, Any]] = []
        while self._future and self._future[0][0] <= now:
            event = heapq.heappop(self._future)[2]
            if is_first_response(event):
                self._unanswered.pop(event["ticket_id"], None)
            if event.get("type") == "purchased" and event.get("channel") == self.incident_channel:
                continue
            due.append(event)
        return due

    def step(self, now: int) -> list[dict[str, Any]]:
        per_step = max(1, round(self.rate / 10))
        for _ in range(per_step):
            self._push(self.surveys.events_at(now))
        if self._tick % 4 == 0:
            for _ in range(per_step):
                self._push(self.carts.journey(now))
        if self.with_customers and self._tick % CUSTOMER_STEPS == 0:
            self._push(self.customers.journey(now))
        if self.with_customers and self._tick % 100 == 0:  # each channel's spend, every 10 s
            self._push(self.customers.spend(now, 100 / CUSTOMER_STEPS / len(CUSTOMER_CHANNELS)))
        self._tickets(now)
        self._tick += 1
        return self._due(now)


def _split_at_first_response(
    events: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A ticket's events (in time order) before its first response, and from it on."""
    for i, event in enumerate(events):
        if is_first_response(event):
            return events[:i], events[i:]
    return events, []


async def generate(
    bootstrap: str,
    settings: Settings,
    *,
    rate: float,
    duration_s: float | None,
    incident_after_s: float | None = None,
    incident_channel: str = "app",
    seed: int = 7,
    backfill_s: float = 0.0,
    ticket_pace: float = 1.0,
    cart_pace: float = 1.0,
) -> int:
    """Live synthetic traffic, timestamps = now: ``rate`` survey invitations/s, carts, tickets.

    Cart journeys start at a quarter of that rate; their later events (checkouts,
    purchases, returns hours later) are held until their time comes. After
    ``incident_after_s`` the incident channel's survey scores collapse and its
    checkout breaks, and support falls behind a flood of tickets (see ``DemoTraffic``).
    ``backfill_s`` seconds of history are produced first, as fast as possible, so
    baselines exist from the start; ``ticket_pace`` and ``cart_pace`` scale every
    duration of a ticket's life and of a cart journey (the demo compresses time).
    The scores' daily rhythm is anchored at the start: the live traffic begins at
    :data:`LIVE_START_HOUR` of the synthetic day whatever the clock says, so the
    same command tells the same story at any hour.
    """
    wall = time.time_ns() // 1_000_000
    traffic = DemoTraffic(
        rate, seed, ticket_pace, cart_pace, day_origin_ms=wall - LIVE_START_HOUR * 3_600_000
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, **client_options(settings.broker)
    )
    await producer.start()
    t = settings.topics
    sent = 0

    async def send(events: list[dict[str, Any]], now: int, tick: int) -> None:
        nonlocal sent
        for event in events:
            topic, key = route(event, settings)
            await producer.send(topic, orjson.dumps(event), key=key.encode() if key else None)
            sent += 1
        if tick % 10 == 0:  # quiet partitions still move event time
            for rec in heartbeats(now, settings, t.inputs):
                await producer.send(rec.topic, rec.value, partition=rec.partition)

    try:
        steps = int(backfill_s * 10)
        for i in range(steps):
            sim = wall - (steps - i) * 100
            await send(traffic.step(sim), sim, i)
        await producer.flush()
        start = time.monotonic()
        tick = 0
        while duration_s is None or time.monotonic() - start < duration_s:
            now = time.time_ns() // 1_000_000
            if incident_after_s is not None and time.monotonic() - start >= incident_after_s:
                traffic.incident(incident_channel, now)
            await send(traffic.step(now), now, tick)
            tick += 1
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()
    return sent
