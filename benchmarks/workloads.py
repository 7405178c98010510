"""The benchmark's workloads: generated once per run, in event-time order, already encoded.

Two workloads, both from the project's own synthetic generators:

* ``survey``: invitations and answers (``schemas.synthetic.SurveyTraffic``), one
  invitation per second of event time — the workload issue 7's figures quote.
* ``mixed``: the demo's mix of all three topics (``streams.replay.DemoTraffic``,
  one step per second of event time): surveys, cart journeys and ticket lives,
  about 74 % / 22 % / 4 % of the events.

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
from schemas.synthetic import SurveyTraffic
from streams.replay import CART_TYPES, TICKET_TYPES, DemoTraffic

PARTITIONS = 4
START_MS = DAY0 + 3_600_000
STEP_MS = 1_000
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


def survey_events(seed: int = 5) -> Iterator[dict[str, Any]]:
    """Survey traffic in event-time order, forever: one invitation per second."""
    traffic = SurveyTraffic(seed=seed)
    heap: list[tuple[int, int, dict[str, Any]]] = []
    seq = itertools.count()
    for t in itertools.count(START_MS, STEP_MS):
        for event in traffic.events_at(t):
            heapq.heappush(heap, (event["ts"], next(seq), event))
        while heap and heap[0][0] <= t:
            yield heapq.heappop(heap)[2]


def mixed_events(seed: int = 5) -> Iterator[dict[str, Any]]:
    """The demo's three-topic traffic in event-time order, forever: one step per second."""
    traffic = DemoTraffic(rate=10.0, seed=seed, ticket_pace=1.0)
    for t in itertools.count(START_MS, STEP_MS):
        yield from traffic.step(t)


def build(name: str, events: int, paced: int, seed: int = 5) -> Workload:
    """Generate ``events + paced`` records of workload ``name`` and count them independently."""
    source = survey_events(seed) if name == "survey" else mixed_events(seed)
    counts = IndependentCounts()
    records: list[Record] = []
    by_family: dict[str, int] = {}
    for event in itertools.islice(source, events + paced):
        counts.add(event)
        record = encode(event)
        by_family[record.family] = by_family.get(record.family, 0) + 1
        records.append(record)
    counts.finish()
    return Workload(name, records[:events], records[events:], counts, by_family)
