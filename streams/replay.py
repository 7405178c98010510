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

from schemas.synthetic import CartTraffic, SurveyTraffic, TicketTraffic
from schemas.timestamps import parse_ts
from streams.settings import Settings

SURVEY_TYPES = frozenset({"invitation_sent", "answer"})
CART_TYPES = frozenset({"item_added", "item_removed", "checkout_started", "purchased"})
TICKET_TYPES = frozenset(
    {"created", "agent_reply", "customer_reply", "solved", "reopened", "closed", "merged"}
)


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


async def produce(bootstrap: str, records: Iterable[Outgoing]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    n = 0
    try:
        pending = []
        for rec in records:
            pending.append(
                await producer.send(rec.topic, rec.value, key=rec.key, partition=rec.partition)
            )
            n += 1
            if len(pending) >= 5000:
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
        records.extend(
            heartbeats(
                closing_heartbeat_ts(max_ts, settings), settings, (t.survey, t.cart, t.ticket)
            )
        )
    return await produce(bootstrap, records)


async def generate(
    bootstrap: str,
    settings: Settings,
    *,
    rate: float,
    duration_s: float | None,
    incident_after_s: float | None = None,
    incident_channel: str = "app",
    seed: int = 7,
) -> int:
    """Live synthetic traffic, timestamps = now: ``rate`` survey invitations/s, carts, tickets.

    Cart journeys start at a quarter of that rate; their later events (checkouts,
    purchases, returns hours later) are held until their time comes. After
    ``incident_after_s`` the incident channel's survey scores collapse and its
    checkouts stop converting, and agents take five times longer to answer tickets.
    """
    surveys = SurveyTraffic(seed=seed)
    carts = CartTraffic(seed=seed)
    tickets = TicketTraffic(seed=seed)
    future: list[tuple[int, int, dict[str, Any]]] = []  # (ts, n, event) heap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    start = time.monotonic()
    sent, tick, n = 0, 0, 0
    t = settings.topics
    try:
        while duration_s is None or time.monotonic() - start < duration_s:
            if incident_after_s is not None and time.monotonic() - start >= incident_after_s:
                surveys.incident_channel = incident_channel
                carts.broken_channel = incident_channel
                tickets.slow_factor = 5.0
            now = time.time_ns() // 1_000_000
            for _ in range(max(1, round(rate / 10))):
                for event in surveys.events_at(now):
                    n += 1
                    heapq.heappush(future, (event["ts"], n, event))
            if tick % 4 == 0:
                for _ in range(max(1, round(rate / 10))):
                    for event in carts.journey(now):
                        n += 1
                        heapq.heappush(future, (event["ts"], n, event))
            if tick % 20 == 0:  # a ticket every two seconds
                for event in tickets.lifecycle(now):
                    n += 1
                    heapq.heappush(future, (event["ts"], n, event))
            while future and future[0][0] <= now:
                _, _, event = heapq.heappop(future)
                topic, key = route(event, settings)
                await producer.send(topic, orjson.dumps(event), key=key.encode() if key else None)
                sent += 1
            tick += 1
            if tick % 10 == 0:  # quiet partitions still move event time
                for rec in heartbeats(now, settings, (t.survey, t.cart, t.ticket)):
                    await producer.send(rec.topic, rec.value, partition=rec.partition)
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()
    return sent
