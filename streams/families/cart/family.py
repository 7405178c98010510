"""The cart family (SPEC §3.2): sessions, abandonment in event time, recoveries.

Per ``cart_id`` the entity is a compact tuple ``(queue, arrivals, open, abandoned)``:
the events not yet applied (sorted by event time, ties by arrival), a counter of
arrivals (the tie-breaker), the open session ``(labels, last ts, value, reached
checkout)`` and the last abandoned session ``(at, labels)`` (kept for the
recovery window). Tuples and shared label tuples keep an open cart at a few
hundred bytes and out of the cyclic collector's scans
(:mod:`~cxpulse.streams.families.queue`). Events are applied only once the
effective watermark has passed them, so no earlier event of the cart can still
arrive: outcomes equal applying each cart's events sorted by ``ts``, whatever
their arrival order within the lateness. Abandonment is decided when the
watermark reaches last activity + ``abandon_after``; an event at exactly that
time comes after it.

The open-carts gauge does not wait for the watermark: it counts a cart as open
when the events that arrived so far, in event-time order, leave a session open
(a ``purchased`` closes it at once), abandonment alone being the watermark's
(:meth:`CartFamily.open_labels`, docs/gauges.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.schemas.events import CartEvent, parse_cart
from cxpulse.schemas.fastpath import fast_carts
from cxpulse.streams.aggregates import AggregateSpec
from cxpulse.streams.families.cart.metrics import MICROS, SLOTS, C, cart_kpis
from cxpulse.streams.families.queue import enqueue, frozen
from cxpulse.streams.family import Kpi, ObserveContext

CHECKOUT_TYPES = frozenset({"checkout_started", "purchased"})
OPEN_GAUGE = "cx_carts_open"


class CartFamily:
    """Cart sessions; see the module docstring for the state kept per cart."""

    name = "cart"
    open_gauge = OPEN_GAUGE
    aggregate = AggregateSpec.sums(SLOTS)
    parse = staticmethod(parse_cart)
    decode_many = staticmethod(fast_carts)

    def __init__(self, abandon_after_ms: int, recovery_window_ms: int) -> None:
        self.abandon_after_ms = abandon_after_ms
        self.recovery_window_ms = recovery_window_ms
        self._interned: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _intern(self, labels: Sequence[str]) -> tuple[str, ...]:
        key = tuple(labels)
        return self._interned.setdefault(key, key)

    # ------------------------------------------------------------ events
    def observe(self, event: CartEvent, ctx: ObserveContext) -> None:
        key = event.cart_id
        state = ctx.entity(key)
        if state is None:
            queue, arrivals, session, abandoned = None, 0, None, None
        else:
            queue, arrivals, session, abandoned = state
        kind = event.type
        # ``to_micros`` written out, and the labels as the segments give them: a tuple
        # shared per combination (``SegmentCap.labels``), so not interned again (a session
        # interns what it opens with, ``_apply``); once per cart event
        item = (event.ts, arrivals, kind, round(event.cart_value * MICROS), ctx.labels(event))
        if queue and queue[-1][0] <= item[0]:
            # Behind the cart's earlier events, in order: the head of the queue, so the wake
            # time, stays. The open labels stay unless the event opens or closes a session
            # (``open_labels``, replayed from the old value).
            was = self.open_labels(state)
            if (was is None) == (kind == "purchased"):
                ctx.set_entity_same(key, ((*queue, item), arrivals + 1, session, abandoned))
                return
        ctx.set_entity(key, (enqueue(queue, item), arrivals + 1, session, abandoned))

    def compact(self, value: Any) -> tuple[Any, ...]:
        """A restored cart (lists, from JSON) as the tuples held in memory, its labels
        shared (:class:`~cxpulse.streams.family.Family`)."""
        queue, arrivals, session, abandoned = value
        if session is not None:
            session = (self._intern(session[0]), *session[1:])
        if abandoned is not None:
            abandoned = (abandoned[0], self._intern(abandoned[1]))
        return (frozen(queue, 4, self._intern), arrivals, session, abandoned)

    def wake_at(self, value: Any) -> int | None:
        queue, _, session, abandoned = value
        at = None
        if queue:
            at = queue[0][0] + 1  # applied once the watermark is past it
        if session is not None:
            due = session[1] + self.abandon_after_ms
            if at is None or due < at:
                at = due
        if abandoned is not None:
            gone = abandoned[0] + self.recovery_window_ms + 1
            if at is None or gone < at:
                at = gone
        return 0 if at is None else at

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        queue = value[0] or ()
        arrivals, session, abandoned = value[1], value[2], value[3]
        ended = False  # an abandonment: the only change here that moves the open labels
        i, n = 0, len(queue)  # queue[i:] is still to apply
        while True:
            due = None if session is None else session[1] + self.abandon_after_ms
            if due is not None and due <= watermark and (i == n or due <= queue[i][0]):
                assert session is not None
                self._abandon(session, due, ctx)
                abandoned, session, ended = (due, session[0]), None, True
                continue
            if i < n and queue[i][0] < watermark:
                ts, _, kind, micros, labels = queue[i]
                i += 1
                session, abandoned = self._apply(ts, kind, micros, labels, session, abandoned, ctx)
                continue
            break
        if abandoned is not None and session is None:
            if watermark > abandoned[0] + self.recovery_window_ms:
                abandoned = None  # no purchase can be a recovery any more
        left = (queue[i:] if i else queue) or None
        if left is None and session is None and abandoned is None:
            ctx.drop_entity(key)
        elif ended:
            ctx.set_entity(key, (left, arrivals, session, abandoned))
        else:  # applying queued events leaves the open labels as they were (open_labels)
            ctx.set_entity_same(key, (left, arrivals, session, abandoned))

    def _apply(
        self,
        ts: int,
        kind: str,
        micros: int,
        labels: Sequence[str],
        session: Sequence[Any] | None,
        abandoned: Sequence[Any] | None,
        ctx: ObserveContext,
    ) -> tuple[Sequence[Any] | None, Sequence[Any] | None]:
        """One event in event-time order; returns the new (open session, abandoned session)."""
        if session is None:
            if (
                kind == "purchased"
                and abandoned is not None
                and ts - abandoned[0] <= self.recovery_window_ms
            ):
                ctx.add(ts, abandoned[1], ((C.RECOVERED, 1), (C.RECOVERED_VALUE, micros)))
                return None, abandoned  # the abandonment stays; no session is added
            opened, reached = self._intern(labels), False
            abandoned = None  # any other event after an abandonment opens a new session
        else:
            opened, reached = session[0], session[3]
        if kind == "purchased":
            deltas = ((C.CONVERTED, 1), (C.CHECKOUT_CONVERTED, 1), (C.CONVERTED_VALUE, micros))
            ctx.add(ts, opened, deltas)
            return None, None
        return (opened, ts, micros, reached or kind in CHECKOUT_TYPES), abandoned

    def _abandon(self, session: Sequence[Any], at: int, ctx: ObserveContext) -> None:
        deltas: list[tuple[int, int]] = [(C.ABANDONED, 1), (C.ABANDONED_VALUE, session[2])]
        if session[3]:
            deltas.append((C.CHECKOUT_ABANDONED, 1))
        ctx.add(at, session[0], deltas)

    # ----------------------------------------------------------- outputs
    def open_labels(self, value: Any) -> Sequence[str] | None:
        """The segments an open session counts under now in ``cx_carts_open``, else ``None``.

        "Open now" (docs/gauges.md): the cart's events that arrived so far, applied
        in event-time order, leave a session open. The applied state is replayed
        through the queued events, opening and closing alike: any event on a cart
        without an open session opens one (under that event's segments), a
        ``purchased`` ends it (a conversion, or a recovery that opens nothing).
        Abandonment is left to the watermark: a session counts until the watermark
        reaches its last activity + ``abandon_after`` (every such decision up to the
        watermark is already in the applied state, so the value alone says it).
        """
        queue, _, session, _ = value
        labels = None if session is None else session[0]
        for item in queue or ():
            if item[2] == "purchased":
                labels = None
            elif labels is None:
                labels = item[4]
        return labels

    def kpis(self, counts: Sequence[int]) -> list[Kpi]:
        return cart_kpis(counts)
