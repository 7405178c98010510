"""The customer family (SPEC §3.4): subscriptions per customer in event-time order.

Leads and acquisition spend are stateless: counted at their own ``ts`` in their
own ``channel``, as are signups. Everything keyed by a customer goes through its
entity ``(queue, arrivals, state)``:

* ``queue``: the events not yet applied, sorted by event time, ties by arrival
  (``(ts, arrival, type, mrr micros, labels)``), applied only once the effective
  watermark has passed them, so no earlier event of the customer can still
  arrive (like carts): outcomes equal applying each customer's events sorted by
  ``ts``, whatever their arrival order within the lateness and the batches;
* ``state``: ``(labels, active, mrr micros, was active, cancelled at)`` or
  ``None``: the segment labels of the customer's first event (fixed), whether it
  is active, its MRR, whether it was ever active (a start is then a
  reactivation) and when it was last cancelled.

A cancelled customer is forgotten once the watermark passes its cancellation +
``forget_after`` (365 d): its next event, if later than that, starts a new
customer (new segment, a ``new`` start). The decision is by event time, so it
does not depend on when the watermark happened to move.

Tuples of ints, strings and shared label tuples: an active customer is held for
ever, and out of the cyclic collector's scans once a collection has seen it
(:mod:`~cxpulse.streams.families.queue`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cxpulse.schemas.events import CustomerEvent, parse_customer
from cxpulse.streams.aggregates import AggregateSpec
from cxpulse.streams.families.customer.metrics import MONTH_MS, SLOTS, K, to_micros, window_kpis
from cxpulse.streams.families.queue import enqueue, frozen
from cxpulse.streams.family import Kpi, ObserveContext

#: a cancelled customer is forgotten this long after its cancellation (SPEC §3.4)
FORGET_AFTER_MS = 365 * 86_400_000
_LEAD = ((K.LEADS, 1),)
_QUEUED = frozenset(
    {"signed_up", "subscription_started", "subscription_changed", "subscription_cancelled"}
)


class CustomerFamily:
    """Customers, leads and spend; see the module docstring for the state kept."""

    name = "customer"
    aggregate = AggregateSpec.sums(SLOTS)
    parse = staticmethod(parse_customer)
    #: the merge stage keeps all-history sums (levels) for this family
    levels = True

    def __init__(self, gross_margin: float = 1.0, forget_after_ms: int = FORGET_AFTER_MS) -> None:
        self.gross_margin = gross_margin
        self.forget_after_ms = forget_after_ms
        self._interned: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _intern(self, labels: Sequence[str]) -> tuple[str, ...]:
        key = tuple(labels)
        return self._interned.setdefault(key, key)

    # ------------------------------------------------------------ events
    def observe(self, event: CustomerEvent, ctx: ObserveContext) -> None:
        kind = event.type
        if kind == "lead_created":
            ctx.add(event.ts, ctx.labels(event), _LEAD)
            return
        if kind == "acquisition_spend":
            assert event.amount is not None
            deltas = ((K.SPEND, to_micros(event.amount)), (K.SPEND_EVENTS, 1))
            ctx.add(event.ts, ctx.labels(event), deltas)
            return
        labels = self._intern(ctx.labels(event))
        if kind == "signed_up":
            deltas2 = [(K.SIGNUPS, 1)]
            if event.referred_by is not None:
                deltas2.append((K.REFERRED, 1))
            if event.lead_id is not None:
                deltas2.append((K.CONVERTED, 1))
            ctx.add(event.ts, labels, deltas2)
        if kind not in _QUEUED:
            return
        customer = event.customer_id
        assert customer is not None
        value = ctx.entity(customer) or (None, 0, None)
        queue, arrivals, state = value
        micros = 0 if event.mrr is None else to_micros(event.mrr)
        item = (event.ts, arrivals, kind, micros, labels)
        ctx.set_entity(customer, (enqueue(queue, item), arrivals + 1, state))

    def compact(self, value: Any) -> tuple[Any, ...]:
        """A restored customer (lists, from JSON) as the tuples held in memory, its labels
        shared (:class:`~cxpulse.streams.family.Family`)."""
        queue, arrivals, state = value
        if state is not None:
            state = (self._intern(state[0]), *state[1:])
        return (frozen(queue, 4, self._intern), arrivals, state)

    def wake_at(self, value: Any) -> int | None:
        queue, _, state = value
        if queue:
            return int(queue[0][0]) + 1  # applied once the watermark is past it
        if state is not None and not state[1] and state[4] is not None:
            return int(state[4]) + self.forget_after_ms + 1
        return None

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        queue = value[0] or ()
        arrivals, state = value[1], value[2]
        i, n = 0, len(queue)  # queue[i:] is still to apply
        while i < n and queue[i][0] < watermark:
            ts, _, kind, micros, labels = queue[i]
            i += 1
            if self._forgotten(state, ts):
                state = None  # back after a year: a new customer
            state = self._apply(ts, kind, micros, labels, state, ctx)
        if self._forgotten(state, watermark):
            state = None
        left = (queue[i:] if i else queue) or None
        if left is None and state is None:
            ctx.drop_entity(key)
        else:
            ctx.set_entity(key, (left, arrivals, state))

    def _forgotten(self, state: Sequence[Any] | None, at: int) -> bool:
        """A cancelled customer is forgotten at any time after cancellation + a year."""
        return (
            state is not None
            and not state[1]
            and state[4] is not None
            and at > state[4] + self.forget_after_ms
        )

    def _apply(
        self,
        ts: int,
        kind: str,
        micros: int,
        labels: Sequence[str],
        state: Sequence[Any] | None,
        ctx: ObserveContext,
    ) -> Sequence[Any]:
        """One event in event-time order; returns the customer's new state."""
        if state is None:
            state = (self._intern(labels), 0, 0, 0, None)  # its first event fixes the segment
        segment, active, mrr, was_active, cancelled_at = state
        if kind == "signed_up":
            return state
        if kind == "subscription_cancelled":
            if not active:
                return state  # cancelling an inactive customer changes nothing
            deltas = ((K.CANCELLED, 1), (K.ACTIVE, -1), (K.MRR, -mrr), (K.CHURNED, mrr))
            ctx.add(ts, segment, deltas)
            return (segment, 0, 0, 1, ts)
        if not active:  # started, or changed while inactive: a start
            flow = K.REACTIVATED if was_active else K.NEW
            deltas = ((K.STARTED, 1), (K.ACTIVE, 1), (K.MRR, micros), (flow, micros))
            ctx.add(ts, segment, deltas)
            return (segment, 1, micros, 1, None)
        diff = micros - mrr  # started while active: a change
        if diff:
            flow = K.EXPANSION if diff > 0 else K.CONTRACTION
            ctx.add(ts, segment, ((K.MRR, diff), (flow, abs(diff))))
        return (segment, 1, micros, 1, cancelled_at)

    # ----------------------------------------------------------- outputs
    def kpis(self, counts: Sequence[int]) -> list[Kpi]:
        """Window-sum metrics only: the level metrics need :meth:`window_kpis`."""
        kpis = window_kpis(None, counts, MONTH_MS, self.gross_margin)
        return [k for k in kpis if k.metric in _COUNTING]

    def window_kpis(
        self, before: Sequence[int] | None, after: Sequence[int] | None, size_ms: int
    ) -> list[Kpi]:
        """Every KPI of a window from the all-history sums before its start and its end."""
        return window_kpis(before, after, size_ms, self.gross_margin)


_COUNTING = frozenset({"referral_rate", "lead_conversion", "cac"})
