"""The benchmark's workloads: generated once per run, in event-time order, already encoded.

Two workloads, both from the project's own synthetic generators:

* ``survey``: invitations and answers (``cxpulse.agents.tools.traffic.SurveyTraffic``), one
  invitation per generator step (the survey figures in docs/performance.md).
* ``mixed``: the demo's mix of all three topics (``cxpulse.agents.tools.replay.DemoTraffic``,
  one step at a time): surveys, cart journeys and ticket lives; 85 % / 13 % / 2 %
  of the events at the default density, 76 % / 22 % / 2 % at 28, 74 % / 23 % / 3 % at
  3.5 (each journey's delays are drawn in event time).

Event-time density. How many events fall in a second of event time decides how
many windows, buckets and KPI records a batch of events touches: a worker's
cost per event is a per-event part plus a per-window part divided by the events
per window. The generators draw each journey's own delays (an answer 5-120 s
after its invitation, a cart's checkout, a ticket's replies) in event time, so
the density is set by the time between steps alone: ``event_time_rate`` events
per second of event time (``cxpulse bench --event-time-rate``). The default,
:data:`EVENT_TIME_RATE`, is the live rate of a business big enough to need the
throughput measured here (a backlog replays its stream at that density); the
generators' historical pace, one step per second (~3.5 survey events/s, ~4.6
mixed events/s), is ``--event-time-rate 3.5`` / ``4.6`` (docs/performance.md,
"Event-time density").

Events are released in event-time order (a heap holds the later events of a
journey until their time), so nothing is late and the only duplicates are the
latency markers the benchmark adds on purpose. Records are encoded up front so
that producing them costs the benchmark as little CPU as possible while workers
run. The first ``events`` records are the backlog the throughput is measured on;
the next ``paced`` ones feed the latency phase. ``counts`` sees every record of
both, as the independent count the worker's output is checked against.
"""

from __future__ import annotations

import heapq
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from benchmarks.expected import DAY0, IndependentCounts
from cxpulse.agents.tools.replay import CART_TYPES, TICKET_TYPES, DemoTraffic
from cxpulse.agents.tools.traffic import SurveyTraffic

PARTITIONS = 4
START_MS = DAY0 + 3_600_000
#: events per second of event time by default (see the module docstring)
EVENT_TIME_RATE = 1_000.0
#: the generators' historical pace: one step per second of event time
STEP_MS = 1_000.0
#: steps the pilot run measures a workload's events per step on
_PILOT_STEPS = 20_000
FAMILIES = ("survey", "cart", "ticket")
WORKLOADS = ("survey", "mixed")
_KEY_FIELD = {"survey": "customer_id", "cart": "cart_id", "ticket": "ticket_id"}


@dataclass(frozen=True, slots=True)
class Record:
    """One input record as produced: which topic family, partition, key and JSON value."""

    family: str
    partition: int
    key: bytes | None
    value: bytes


@dataclass
class Workload:
    """A generated workload: the throughput backlog, the paced tail, and their counts."""

    name: str
    backlog: list[Record]
    paced: list[Record]
    counts: IndependentCounts
    by_family: dict[str, int] = field(default_factory=dict)
    #: events per second of event time, as generated (backlog and paced tail)
    event_time_rate: float = 0.0
    #: seconds of event time from the first event to the last
    event_time_span_s: float = 0.0

    @property
    def families(self) -> tuple[str, ...]:
        """The topic families this workload writes to (the ceiling reads all of them)."""
        return tuple(f for f in FAMILIES if self.by_family.get(f))


def family_of(event: dict[str, Any]) -> str:
    """The input topic family of an event, by its type (SPEC §1)."""
    kind = event["type"]
    if kind in CART_TYPES:
        return "cart"
    if kind in TICKET_TYPES:
        return "ticket"
    return "survey"


def encode(event: dict[str, Any]) -> Record:
    """Key by the entity id (SPEC §1) and pick the partition by a stable hash of it."""
    family = family_of(event)
    key = str(event[_KEY_FIELD[family]]).encode()
    return Record(family, zlib.crc32(key) % PARTITIONS, key, orjson.dumps(event))


def _steps(step_ms: float) -> Iterator[int]:
    """Step times from :data:`START_MS`, ``step_ms`` apart (whole ms, never going back)."""
    for k in itertools.count():
        yield START_MS + int(k * step_ms)


def survey_events(seed: int = 5, step_ms: float = STEP_MS) -> Iterator[dict[str, Any]]:
    """Survey traffic in event-time order, forever: one invitation per step."""
    traffic = SurveyTraffic(seed=seed)
    heap: list[tuple[int, int, dict[str, Any]]] = []
    seq = itertools.count()
    for t in _steps(step_ms):
        for event in traffic.events_at(t):
            heapq.heappush(heap, (event["ts"], next(seq), event))
        while heap and heap[0][0] <= t:
            yield heapq.heappop(heap)[2]


def mixed_events(seed: int = 5, step_ms: float = STEP_MS) -> Iterator[dict[str, Any]]:
    """The demo's three-topic traffic in event-time order, forever: one step at a time."""
    traffic = DemoTraffic(rate=10.0, seed=seed, ticket_pace=1.0, customers=False)
    for t in _steps(step_ms):
        yield from traffic.step(t)


def _events(name: str, seed: int, step_ms: float) -> Iterator[dict[str, Any]]:
    return survey_events(seed, step_ms) if name == "survey" else mixed_events(seed, step_ms)


def step_for(name: str, event_time_rate: float, seed: int = 5) -> float:
    """The step (ms of event time) that gives ``event_time_rate`` events per second.

    A workload's events per step do not depend on the step (each step starts the
    same journeys, whose own delays are drawn in event time), so they are counted
    once on a pilot run at the historical pace.
    """
    if not event_time_rate > 0:
        raise ValueError(f"event_time_rate must be > 0, not {event_time_rate}")
    end = START_MS + _PILOT_STEPS * STEP_MS
    pilot = itertools.takewhile(lambda e: e["ts"] < end, _events(name, seed, STEP_MS))
    per_step = sum(1 for _ in pilot) / _PILOT_STEPS
    return STEP_MS * per_step / event_time_rate


def build(
    name: str, events: int, paced: int, seed: int = 5, event_time_rate: float = EVENT_TIME_RATE
) -> Workload:
    """Generate ``events + paced`` records of workload ``name`` and count them independently."""
    source = _events(name, seed, step_for(name, event_time_rate, seed))
    counts = IndependentCounts()
    records: list[Record] = []
    by_family: dict[str, int] = {}
    last_ts = START_MS
    for event in itertools.islice(source, events + paced):
        counts.add(event)
        record = encode(event)
        by_family[record.family] = by_family.get(record.family, 0) + 1
        records.append(record)
        last_ts = event["ts"]
    counts.finish()
    first_ts = orjson.loads(records[0].value)["ts"] if records else last_ts
    span_s = max(last_ts - first_ts, 1) / 1000  # released in event-time order
    return Workload(
        name,
        records[:events],
        records[events:],
        counts,
        by_family,
        event_time_rate=round(len(records) / span_s, 1),
        event_time_span_s=round(span_s, 1),
    )
