"""The compiled fast path of the decoders: plain valid records in one msgspec call.

A typed msgspec struct per topic accepts only the plain shape of a valid record
(no unknown fields, one type per field); a few checks then build the same event
the reference decoder would. Survey records, the most numerous, are decoded straight
into :class:`SurveyEvent`, whose annotations carry the record's rules: one struct per
record instead of two (``python -m benchmarks.engine answers 200000
--event-time-rate=1000``: 6.0-6.1 → 5.5-5.6 µs per event, back to back).
Anything else returns ``None`` and goes to the reference decoder, so dead-letter
reasons and messages never depend on this path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Generic, TypeVar, cast

import msgspec

from cxpulse.schemas.event_types import (
    CART_TYPES,
    CHANNEL_REQUIRED,
    CUSTOMER_KEYED,
    CUSTOMER_TYPES,
    MAX_EVENT_ID_CHARS,
    MAX_RECORD_BYTES,
    MRR_TYPES,
    PRIORITIES,
    SCORE_RANGES,
    TICKET_TYPES,
    VIAS,
    CartEvent,
    CustomerEvent,
    SurveyEvent,
    TicketEvent,
    customer_event,
    ticket_event,
)
from cxpulse.schemas.timestamps import parse_ts

_INF = float("inf")
E = TypeVar("E")

# ---------------------------------------------------------------------------- fast path
# Every field optional here: a missing or null one is settled by the checks below (a
# required one missing -> the reference decoder reports it). ``gc=False``: these
# short-lived structs hold only strings and numbers, so the collector never tracks them.


class _Wire(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The fields every topic's record has (SPEC §1); each topic's struct adds its own."""

    type: str
    event_id: str | None = None
    ts: int | str | None = None
    channel: str | None = None


class _TicketWire(_Wire, forbid_unknown_fields=True, gc=False):
    ticket_id: str | None = None
    priority: str | None = None
    tags: list[str] | None = None
    public: bool | None = None
    via: str | None = None
    into: str | None = None


class _CustomerWire(_Wire, forbid_unknown_fields=True, gc=False):
    customer_id: str | None = None
    lead_id: str | None = None
    referred_by: str | None = None
    mrr: float | None = None
    plan: str | None = None
    amount: float | None = None


_survey_event = msgspec.json.Decoder(SurveyEvent).decode
_cart_event = msgspec.json.Decoder(CartEvent).decode
_ticket_wire = msgspec.json.Decoder(_TicketWire).decode
_customer_wire = msgspec.json.Decoder(_CustomerWire).decode
_WireError = msgspec.DecodeError  # a ValidationError is one too


def fast_survey(value: bytes) -> SurveyEvent | None:
    """The event, when ``value`` is a plain valid survey record; else ``None``.

    Decoded straight into the event (its constraints are the record's rules but the
    score's range, which depends on the question): one struct, no copy. An invitation
    carrying a question or a score goes to the reference, which drops them.
    """
    try:
        return _survey_checked(_survey_event(value))
    except _WireError:
        return None


def _survey_checked(ev: SurveyEvent) -> SurveyEvent | None:
    """A decoded survey event if the rules its annotations cannot say hold, else ``None``."""
    if ev.type == "answer":
        bounds, score = SCORE_RANGES.get(ev.question), ev.score  # type: ignore[arg-type]
        if bounds is None or score is None or not bounds[0] <= score <= bounds[1]:
            return None
    elif ev.type != "invitation_sent" or ev.question is not None or ev.score is not None:
        return None
    return ev


#: a value's first and last byte, for the boundary test of a run (:func:`_bounded`)
_FIRST, _LAST = itemgetter(0), itemgetter(-1)
#: where msgspec stopped (``... - at `$[12]``` or ``at `$[12].score```): how many events
#: it had decoded before the one that failed
_FAILED_AT = re.compile(r"at `\$\[(\d+)\]")


def _bounded(values: Sequence[bytes | None]) -> bool:
    """Whether every value is bytes from ``{`` to ``}`` within ``MAX_RECORD_BYTES``: the
    boundary test of a run (:class:`Runs`), by C loops with no bytecode per record.

    The first and last bytes are gathered by ``itemgetter`` into two ``bytes`` and
    counted: ``bytes.startswith`` and ``endswith`` parse their arguments at every call,
    ~270 instructions each a value (callgrind, ``python -m benchmarks.instructions``).
    """
    if None in values:
        return False
    present = cast("Sequence[bytes]", values)
    if max(map(len, present), default=0) > MAX_RECORD_BYTES:
        return False
    try:
        firsts, lasts = bytes(map(_FIRST, present)), bytes(map(_LAST, present))
    except IndexError:  # an empty value
        return False
    return firsts.count(0x7B) == len(present) and lasts.count(0x7D) == len(present)  # { }


class Runs(Generic[E]):
    """A topic's run decoder: per value, the one-record fast path's answer, in one
    msgspec call for a run of them (a family's ``decode_many``, streams.family).

    ``None`` for ``None`` and for a value over ``MAX_RECORD_BYTES``, as the ``parse_*``
    decoders send both to the reference decoder.

    One call for a run of records instead of one each: ~0.4 µs less per survey record
    in the engine (``python -m benchmarks.engine answers 200000 --event-time-rate=1000``,
    pairs run side by side on the two cores), with runs short enough (the engine's
    ``_DECODE_RUN``) that an event is still in the cache when it is observed.

    Why each event is its own record's: the values are joined by newlines and decoded
    as a stream of JSON texts. Each value must start with ``{`` and end with ``}``:
    after a ``}`` no JSON continues with ``{``, so no event can span two values and
    each value gives at least one event; as many events as values then means one
    each. A value that gives more, or fails the boundary test, and every record a
    check refuses, gets the one-record answer (``one``). A record that fails to decode
    (a heartbeat, an invalid record) does too, and the run is decoded again around
    it, once; a second failure sends the rest of the run one record at a time.
    """

    __slots__ = ("checked", "lines", "one")

    def __init__(
        self,
        struct: type[Any],
        checked: Callable[[Any], E | None],
        one: Callable[[bytes], E | None],
    ) -> None:
        #: decodes newline-separated records into ``struct``s
        self.lines: Callable[[bytes], list[Any]] = msgspec.json.Decoder(struct).decode_lines
        #: a decoded struct's event if the checks the struct cannot say hold, else ``None``
        self.checked = checked
        #: the one-record fast path: ``checked`` of one decoded record, ``None`` if it fails
        self.one = one

    def __call__(self, values: Sequence[bytes | None]) -> list[E | None]:
        if not _bounded(values):
            one = self.one
            return [None if v is None or len(v) > MAX_RECORD_BYTES else one(v) for v in values]
        return self._decoded(cast("Sequence[bytes]", values), retries=1)

    def _decoded(self, values: Sequence[bytes], retries: int) -> list[E | None]:
        """The answers for values that all passed the boundary test."""
        if not values:
            return []
        try:
            events = self.lines(b"\n".join(values))
        except _WireError as exc:
            failed = _FAILED_AT.search(str(exc))
            if failed is None or not retries or int(failed.group(1)) >= len(values):
                return list(map(self.one, values))
            k = int(failed.group(1))  # events before the failure: the failing value is at most k
            before, after = self._decoded(values[:k], 0), self._decoded(values[k + 1 :], 0)
            return [*before, self.one(values[k]), *after]
        if len(events) != len(values):
            return list(map(self.one, values))
        return list(map(self.checked, events))


fast_surveys: Runs[SurveyEvent] = Runs(SurveyEvent, _survey_checked, fast_survey)


def fast_cart(value: bytes) -> CartEvent | None:
    """The event, when ``value`` is a plain valid cart record; else ``None``.

    Decoded straight into the event, as surveys are (:func:`fast_survey`): its
    annotations carry the record's rules but the type's.
    """
    try:
        return _cart_checked(_cart_event(value))
    except _WireError:
        return None


def _cart_checked(ev: CartEvent) -> CartEvent | None:
    """A decoded cart event if its type is a cart event's, else ``None``."""
    return ev if ev.type in CART_TYPES else None


fast_carts: Runs[CartEvent] = Runs(CartEvent, _cart_checked, fast_cart)


def fast_ticket(value: bytes) -> TicketEvent | None:
    """The event, when ``value`` is a plain valid ticket record; else ``None``."""
    try:
        return _ticket_checked(_ticket_wire(value))
    except _WireError:
        return None


def _ticket_checked(w: _TicketWire) -> TicketEvent | None:
    """The event of a decoded ticket record if the rest of its rules hold, else ``None``."""
    etype, event_id, ts, ticket_id = w.type, w.event_id, parse_ts(w.ts), w.ticket_id
    if ts is None or event_id is None or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        return None
    if etype not in TICKET_TYPES or not ticket_id:
        return None
    priority, public, via = "normal", True, "human"
    tags: tuple[str, ...] = ()
    into: str | None = None
    if etype == "created":
        if w.priority is not None:
            if w.priority not in PRIORITIES:
                return None
            priority = w.priority
        if w.tags is not None:
            tags = tuple(w.tags)
    elif etype == "agent_reply":
        if w.public is not None:
            public = w.public
        if w.via is not None:
            if w.via not in VIAS:
                return None
            via = w.via
    elif etype == "merged":
        into = w.into
        if not into:
            return None
    channel = "unknown" if w.channel is None else w.channel
    return ticket_event(event_id, etype, ts, channel, ticket_id, priority, tags, public, via, into)


fast_tickets: Runs[TicketEvent] = Runs(_TicketWire, _ticket_checked, fast_ticket)


def fast_customer(value: bytes) -> CustomerEvent | None:
    """The event, when ``value`` is a plain valid customer record; else ``None``.

    Fields of other types must be absent (the reference ignores them; here they only
    send the record to the reference, never change a result).
    """
    try:
        w = _customer_wire(value)
    except _WireError:
        return None
    etype, event_id, ts = w.type, w.event_id, parse_ts(w.ts)
    if ts is None or event_id is None or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        return None
    if etype not in CUSTOMER_TYPES:
        return None
    customer_id, lead_id, referred_by = w.customer_id, w.lead_id, w.referred_by
    mrr, plan, amount, channel = w.mrr, w.plan, w.amount, w.channel
    if channel is None:
        if etype in CHANNEL_REQUIRED:
            return None
        channel = "unknown"
    if etype in CUSTOMER_KEYED:
        if not customer_id:
            return None
    elif customer_id is not None:
        return None
    if etype == "signed_up":
        if lead_id == "" or referred_by == "":
            return None
    elif referred_by is not None or (etype != "lead_created" and lead_id is not None):
        return None
    elif etype == "lead_created" and not lead_id:
        return None
    if etype in MRR_TYPES:
        if mrr is None or not 0.0 <= mrr < _INF:
            return None
    elif mrr is not None or plan is not None:
        return None
    if etype == "acquisition_spend":
        if amount is None or not 0.0 <= amount < _INF:
            return None
    elif amount is not None:
        return None
    return customer_event(
        event_id, etype, ts, channel, customer_id, lead_id, referred_by, mrr, plan, amount
    )
