"""The support-ticket family (SPEC §3.3): lifecycle in event time, SLA, business hours.

Per ``ticket_id`` the entity is ``(queue, arrivals, state)``. As for carts, events
wait in the queue until the watermark passes them and then apply in event-time
order (ties: arrival), so *first* reply, *first* solve and *last* solve before
close mean what the SPEC says whatever the arrival order within the lateness.

``state`` (a dict; ``None`` until the ticket's first applied event):

* ``c``/``lb``/``p``: ``created`` time, segment labels and priority (``c`` is
  ``None`` for a ticket whose ``created`` was never seen: it feeds no duration);
* ``fr``/``fs``/``ls``: first human public reply, first and last solve;
* ``dl``/``dlb``: first-response SLA deadline, calendar and business;
  ``sla``/``slab``: ``None`` while undecided, else ``"a"`` achieved, ``"b"``
  breached, ``"x"`` no outcome (merged before the deadline without a reply);
* ``open``, ``closed``, ``m`` (merge time: the ticket stops counting);
* ``la``: the last applied event's time.

Tuples, and a state of ints, strings and shared label tuples: out of the cyclic
collector's scans once a collection has seen them (:mod:`~cxpulse.streams.families.queue`).

A breach is decided when the watermark passes the deadline strictly, and an
event at exactly the deadline is applied first (a reply then is achieved). A
closed or merged ticket's state goes once its SLA is decided and the dedup
horizon has passed since the close or merge: until then its later events keep
the ticket's segment (or, merged, do not count); after it they count as events
of a ticket whose ``created`` was never seen. A ticket that is never closed (many
are solved and left) would be kept for ever: once the watermark is more than
``tickets.forget_after`` (default 30 days) past its last event, it goes the same
way — the bound that keeps a long-running worker's memory flat.

The open-tickets gauge does not wait for the watermark: a ticket counts as open
when the events that arrived so far, in event-time order, leave it open (a
``solved``, ``closed`` or ``merged`` closes it as it arrives), forgetting alone
being the watermark's (:meth:`TicketFamily.open_labels`, docs/gauges.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cxpulse.schemas.events import TicketEvent, parse_ticket
from cxpulse.schemas.fastpath import fast_tickets
from cxpulse.streams.families.queue import enqueue, frozen
from cxpulse.streams.families.ticket.business_time import BusinessCalendar
from cxpulse.streams.families.ticket.metrics import Layout, ticket_kpis
from cxpulse.streams.family import Kpi, ObserveContext

OPEN_GAUGE = "cx_tickets_open"
_FIRST_RESPONSE = "ticket_first_response_seconds"
_FIRST_RESOLUTION = "ticket_first_resolution_seconds"
_FULL_RESOLUTION = "ticket_full_resolution_seconds"


class TicketFamily:
    """Ticket lifecycles; see the module docstring for the state kept per ticket."""

    name = "ticket"
    open_gauge = OPEN_GAUGE
    parse = staticmethod(parse_ticket)
    decode_many = staticmethod(fast_tickets)

    def __init__(
        self,
        sla_ms: Mapping[str, int],
        calendar: BusinessCalendar | None,
        horizon_ms: int,
        forget_after_ms: int | None = None,
    ) -> None:
        self.sla_ms = dict(sla_ms)
        self.calendar = calendar
        self.horizon_ms = horizon_ms
        self.forget_after_ms = forget_after_ms
        self.layout = Layout(business=calendar is not None)
        self.aggregate = self.layout.spec
        self._interned: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _intern(self, labels: Sequence[str]) -> tuple[str, ...]:
        key = tuple(labels)
        return self._interned.setdefault(key, key)

    # ------------------------------------------------------------ events
    def observe(self, event: TicketEvent, ctx: ObserveContext) -> None:
        queue, arrivals, state = ctx.entity(event.ticket_id) or (None, 0, None)
        complaint = any(t.lower() == "complaint" for t in event.tags)
        item = (
            event.ts,
            arrivals,
            event.type,
            self._intern(ctx.labels(event)),
            event.priority,
            event.public and event.via == "human",
            complaint,
        )
        ctx.set_entity(event.ticket_id, (enqueue(queue, item), arrivals + 1, state))

    def compact(self, value: Any) -> tuple[Any, ...]:
        """A restored ticket (lists, from JSON) as the tuples held in memory, its labels
        shared (:class:`~cxpulse.streams.family.Family`)."""
        queue, arrivals, st = value
        if st is not None and st.get("lb") is not None:
            st = {**st, "lb": self._intern(st["lb"])}
        return (frozen(queue, 3, self._intern), arrivals, st)

    def wake_at(self, value: Any) -> int | None:
        queue, _, st = value
        times = []
        if queue:
            times.append(queue[0][0] + 1)
        if st is not None:
            if st["c"] is not None and st["sla"] is None:
                times.append(st["dl"] + 1)
            if st["c"] is not None and st.get("slab", "-") is None:
                times.append(st["dlb"] + 1)
            if self.forget_after_ms is not None and "la" in st:
                times.append(st["la"] + self.forget_after_ms + 1)
            if st["m"] is not None:
                times.append(st["m"] + self.horizon_ms + 1)
            elif st["closed"] and st["c"] is not None:
                times.append(st["cl"] + self.horizon_ms + 1)
            elif not queue and st["c"] is None:
                times.append(0)  # nothing left to decide: drop at once
        return min(times) if times else None

    def on_wake(self, key: str, value: Any, watermark: int, ctx: ObserveContext) -> None:
        queue = value[0] or ()
        i, n = 0, len(queue)  # queue[i:] is still to apply
        st = None if value[2] is None else dict(value[2])
        while True:
            head = queue[i][0] if i < n else None
            if st is not None and self._breach_due(st, "sla", "dl", watermark, head):
                self._breach(st, "sla", "dl", "ticket_sla_breach", ctx)
                continue
            if st is not None and self._breach_due(st, "slab", "dlb", watermark, head):
                self._breach(st, "slab", "dlb", "ticket_sla_breach_business", ctx)
                continue
            if head is not None and head < watermark:
                if st is not None and self._inert(st, head):
                    st = None  # forgotten before this event: it counts as a new ticket's
                st = self._apply(queue[i], st, ctx)
                i += 1
                continue
            break
        left = (queue[i:] if i else queue) or None
        if left is None and (st is None or self._inert(st, watermark)):
            ctx.drop_entity(key)
        else:
            ctx.set_entity(key, (left, value[1], st))

    def _inert(self, st: dict[str, Any], watermark: int) -> bool:
        if _pending(st):
            return False
        forget = self.forget_after_ms
        if forget is not None and "la" in st and watermark > st["la"] + forget:
            return True  # silent for longer than tickets.forget_after: never closed, forgotten
        if st["m"] is not None:
            return watermark > st["m"] + self.horizon_ms
        if st["c"] is None:
            return True
        return st["closed"] and watermark > st["cl"] + self.horizon_ms

    @staticmethod
    def _breach_due(
        st: dict[str, Any], flag: str, deadline: str, watermark: int, head: int | None
    ) -> bool:
        if st["c"] is None or flag not in st or st[flag] is not None:
            return False
        due: int = st[deadline]
        return due < watermark and (head is None or due < head)

    def _breach(
        self, st: dict[str, Any], flag: str, deadline: str, metric: str, ctx: ObserveContext
    ) -> None:
        st[flag] = "b"
        ctx.add(st[deadline], st["lb"], ((self.layout.sla[metric], 1),))

    def _apply(
        self, item: Sequence[Any], st: dict[str, Any] | None, ctx: ObserveContext
    ) -> dict[str, Any]:
        ts, _, kind, labels, priority, human_public, complaint = item
        if st is None:
            st = {"c": None, "lb": None, "m": None, "open": False, "closed": False, "sla": "-"}
        if st["m"] is not None:
            return st  # merged: the ticket stops counting from that event on
        st["la"] = ts  # the last applied event: tickets.forget_after counts from it
        layout = self.layout
        seg = st["lb"] if st["c"] is not None else labels
        if kind == "created":
            if st["c"] is None:
                self._created(st, ts, labels, priority, complaint, ctx)
        elif kind == "agent_reply":
            if st["c"] is not None and st["fr"] is None and human_public:
                st["fr"] = ts
                self._duration(_FIRST_RESPONSE, st, st["c"], ts, ts, ctx)
                for flag, metric in (
                    ("sla", "ticket_sla_breach"),
                    ("slab", "ticket_sla_breach_business"),
                ):
                    if flag in st and st[flag] is None:  # by the deadline: breaches come first
                        st[flag] = "a"
                        ctx.add(ts, st["lb"], ((layout.sla[metric] + 1, 1),))
        elif kind == "solved":
            ctx.add(ts, seg, ((layout.solved, 1),))
            if st["c"] is not None:
                if st["fs"] is None:
                    st["fs"] = ts
                    self._duration(_FIRST_RESOLUTION, st, st["c"], ts, ts, ctx)
                st["ls"] = ts
                st["open"] = False
        elif kind == "reopened":
            ctx.add(ts, seg, ((layout.reopened, 1),))
            if st["c"] is not None and not st["closed"]:
                st["open"] = True
        elif kind == "closed" and not st["closed"]:  # closed is terminal: later ones are ignored
            if st["c"] is not None and st["ls"] is not None:
                self._duration(_FULL_RESOLUTION, st, st["c"], st["ls"], ts, ctx)
            st["open"], st["closed"], st["cl"] = False, True, ts
        elif kind == "merged":
            st["m"], st["open"] = ts, False
            for flag in ("sla", "slab"):
                if flag in st and st[flag] is None:
                    st[flag] = "x"  # merged before its deadline without a reply: no outcome
        return st

    def _created(
        self,
        st: dict[str, Any],
        ts: int,
        labels: tuple[str, ...],
        priority: str,
        complaint: bool,
        ctx: ObserveContext,
    ) -> None:
        target = self.sla_ms[priority]
        st.update(
            c=ts,
            lb=labels,
            p=priority,
            fr=None,
            fs=None,
            ls=None,
            open=True,
            closed=False,  # a close before the ticket's creation (in event time) is not its close
            dl=ts + target,
            sla=None,
        )
        if self.calendar is not None:
            st.update(dlb=self.calendar.add_business_ms(ts, target), slab=None)
        deltas = [(self.layout.created, 1)]
        if complaint:
            deltas.append((self.layout.complaints, 1))
        ctx.add(ts, labels, deltas)

    def _duration(
        self, metric: str, st: dict[str, Any], start: int, end: int, at: int, ctx: ObserveContext
    ) -> None:
        """A duration from ``start`` to ``end``, attributed at ``at``; business time too."""
        ctx.add(at, st["lb"], self.layout.duration(metric, end - start))
        if self.calendar is not None:
            business = self.calendar.business_ms(start, end)
            ctx.add(at, st["lb"], self.layout.duration(metric + "_business", business))

    # ----------------------------------------------------------- outputs
    def open_labels(self, value: Any) -> Sequence[str] | None:
        """``cx_tickets_open``: created, not solved, closed or merged (a reopen reopens).

        "Open now" (docs/gauges.md): the ticket's events that arrived so far, applied
        in event-time order, leave it open. The applied state is replayed through the
        queued events with the rules of :meth:`_apply`, so a ``solved``, ``closed``
        or ``merged`` closes the ticket as it arrives, as a ``created`` or
        ``reopened`` opens it. Forgetting is left to the watermark (it is already in
        the applied state when due); SLA outcomes do not change whether a ticket is open.
        """
        queue, _, st = value
        if st is None:
            created, labels, is_open, closed, merged = False, None, False, False, False
        else:
            created, labels = st["c"] is not None, st["lb"]
            is_open, closed, merged = st["open"], st["closed"], st["m"] is not None
        for item in queue or ():
            if merged:
                break  # merged: the ticket stops counting from that event on
            kind = item[2]
            if kind == "created":
                if not created:
                    created, labels, is_open, closed = True, item[3], True, False
            elif kind == "solved" and created:
                is_open = False
            elif kind == "reopened" and created and not closed:
                is_open = True
            elif kind == "closed":
                is_open, closed = False, True
            elif kind == "merged":
                merged = True
        if not (created and is_open and not merged):
            return None
        return labels

    def kpis(self, counts: Sequence[Any]) -> list[Kpi]:
        return ticket_kpis(self.layout, counts)


def _pending(st: dict[str, Any]) -> bool:
    """An SLA outcome is still to be decided."""
    return st["c"] is not None and (st["sla"] is None or st.get("slab", "-") is None)
