"""The contract between the shared event-time engine and a metric family.

A family (surveys, carts, tickets) knows how to parse its topic, what one event
*observes* (increments to integer counters, attributed to an event time and a
segment source), and how to turn summed counters into KPI values. It knows
nothing of Kafka, Faust, windows or watermarks: the engine in
:mod:`cxpulse.streams.engine` owns all of those, once, for every family.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cxpulse.schemas.events import Heartbeat, Invalid
from cxpulse.streams.aggregates import AggregateSpec

#: Sparse counter increments: ``((slot, delta), ...)``.
Deltas = Sequence[tuple[int, int]]


# not frozen: a frozen dataclass is built through object.__setattr__ per field, 4x the
# cost, and one is built per final KPI (never changed after; docs/performance.md)
@dataclass(slots=True)
class Kpi:
    """One metric's value over one window and segment (before it becomes a record)."""

    metric: str
    value: float | None
    n: int
    stats: dict[str, Any] = field(default_factory=dict)


class ObserveContext(Protocol):
    """What the engine offers a family while it applies one accepted event."""

    def labels(self, source: object) -> tuple[str, ...]:
        """Segment labels (``all``, ``channel=web``…) of an event or entity, cap applied."""

    def add(self, ts: int, labels: Sequence[str], deltas: Deltas) -> None:
        """Count ``deltas`` at attribution time ``ts`` under each segment label."""

    def entity(self, key: str) -> Any:
        """The family's state for an entity (a response, a cart, a ticket), or ``None``."""

    def set_entity(self, key: str, value: Any) -> None:
        """Replace an entity's state (values are treated as immutable: always a new value)."""

    def set_entity_same(self, key: str, value: Any) -> None:
        """:meth:`set_entity` for an existing entity whose change keeps its open labels and,
        outside ``on_wake``, its wake time: the engine then need not ask the family."""

    def open_entity(
        self,
        key: str,
        value: Any,
        wake_at: int | None,
        ts: int,
        labels: Sequence[str],
        deltas: Deltas,
    ) -> None:
        """:meth:`add` then :meth:`set_entity` for a key :meth:`entity` just found absent;
        ``wake_at`` is the family's ``wake_at(value)``. One call for the usual new entity."""

    def drop_entity(self, key: str) -> None:
        """Forget an entity once it can no longer change any metric."""


class Family(Protocol):
    """A metric family plugged into the engine.

    A family with an open-entity gauge (carts, tickets) also has ``open_gauge``, the
    gauge's name, and ``open_labels(value)``: the segments the entity counts under
    as open now, or ``None``. The engine keeps the counts, touched only when an
    entity's labels change (the families return shared tuples, so mostly an ``is``).

    A family may also have ``decode_many(values)``: per record value of a run, the
    event :meth:`parse` would give, or ``None`` to let :meth:`parse` decide it. One
    call per run instead of one per record (``schemas.fastpath.Runs``: surveys, carts,
    tickets).

    And ``forget_at(value)``: the watermark from which the entity is inert, i.e. from
    which :meth:`on_wake` would do nothing but drop it. It is never below
    :meth:`wake_at`; the engine then drops such an entity itself, without calling
    :meth:`on_wake` (surveys: a response at the end of its horizon). With it a family
    may have ``forget_below(watermark)``: an int such that an entity whose value is an
    int below it is past ``forget_at``; a wake step whose values all are is then dropped
    whole, by C loops (surveys: a packed response; no open gauge).

    And ``compact(value)``, ``chunk_context(values)`` and ``load(value, context)``: an
    entity held in a compact form that names process-local data (surveys: a response
    with one paired answer is an int naming its segments by index,
    :mod:`~cxpulse.streams.families.survey.packed`). Each changelog chunk record
    carries ``chunk_context`` of the values it holds (what they name, or ``None``); on
    restore every value of a record with one goes through ``load`` with it, then every
    entity through ``compact`` (values of records written without one, too). A family
    may have ``compact`` alone: the form it holds in memory, from the lists JSON gives
    back (carts, tickets, customers: tuples, :mod:`~cxpulse.streams.families.queue`).
    """

    name: str
    #: The slots of one bucket aggregate and how each merges.
    aggregate: AggregateSpec

    def parse(self, value: bytes | None) -> Any:
        """Decode and validate one record value: an event, a Heartbeat or an Invalid."""

    def observe(self, event: Any, ctx: ObserveContext) -> None:
        """Apply one accepted (valid, not duplicate, not late) event."""

    def wake_at(self, value: Any) -> int | None:
        """Event time at which the entity needs its turn (a timeout, its expiry), if any."""

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        """The watermark reached :meth:`wake_at`: decide timeouts, or drop inert state."""

    def kpis(self, counts: Sequence[Any]) -> list[Kpi]:
        """KPI values for summed counters; only metrics that have an observation."""


__all__ = ["Deltas", "Family", "Heartbeat", "Invalid", "Kpi", "ObserveContext"]
