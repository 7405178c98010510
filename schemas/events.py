"""Decoders for the four input topics (SPEC §1): raw Kafka value -> typed event.

Each ``parse_*`` function takes the record value (``bytes`` or ``None``) and returns a
typed event, a :class:`Heartbeat`, or an :class:`Invalid` carrying the dead-letter reason
and a short message naming the field. They never raise, never log and keep no state, so
an agent can call them per record without a ``try``.

Rules beyond the letter of SPEC §1.4, each chosen so a producer sees the same thing
every time:

* Faults are looked for in the order ``too_large`` (``len(value) > MAX_RECORD_BYTES``,
  checked before any parsing) > ``invalid_json`` > ``schema`` > ``out_of_range``; the
  first found is reported. Every ``schema`` check runs before any range check, so a
  record missing ``response_id`` with ``score`` 99 is ``schema``.
* ``invalid_json``: a ``None`` value (tombstone), bytes that are not UTF-8, a UTF-8 byte
  order mark, ``NaN``/``Infinity`` literals, a number that overflows a double
  (``1e400``), nesting deeper than orjson's limit (1024). An integer beyond 64 bits is
  read by orjson as a float: it is then an ordinary (usually out-of-range) number.
* Duplicate keys in one object: the last one wins (orjson behaviour).
* Unknown fields are ignored; an optional field given as ``null`` counts as absent; a
  required field given as ``null`` is missing (``schema``).
* Identifiers (``survey_id``, ``response_id``, ``customer_id``, ``cart_id``,
  ``ticket_id``, ``into``) must be non-empty strings; so must a cart's optional
  ``customer_id`` when present. ``event_id`` must be a string of 1-128 characters
  (code points). None of these are trimmed or case-folded.
* ``channel`` is any string (the empty string included), not capped or cleaned here;
  absent or ``null`` gives ``"unknown"``.
* Numbers: ``true``/``false`` are never numbers. ``score`` is an integer; a float with
  an integral value counts (``7.0`` -> 7), any other float is a wrong type (``schema``).
  ``cart_value`` is any finite number ≥ 0 (kept as ``float``); a negative value is
  ``out_of_range``. A non-finite number is ``out_of_range`` (orjson never produces one,
  so it cannot come from bytes).
* Customer events (SPEC §1.5): ``customer_id`` is required on every type but
  ``lead_created`` and ``acquisition_spend``; ``lead_id`` on ``lead_created``; ``channel``
  on ``lead_created``, ``signed_up`` and ``acquisition_spend`` (absent or ``null`` there is
  ``schema``, not ``"unknown"``). ``mrr`` (subscription started / changed) and ``amount``
  (spend) are required finite numbers ≥ 0, like ``cart_value``. The optional
  ``lead_id`` and ``referred_by`` of ``signed_up`` are non-empty strings when present;
  ``plan`` is any string.
* Fields that belong to another event type are ignored, not validated (``priority`` on
  ``solved``, ``score`` on ``invitation_sent``); on the returned event they hold their
  defaults: ``question``/``score`` ``None`` unless ``answer``; ``priority`` ``"normal"``
  and ``tags`` ``()`` unless ``created``; ``public`` ``True`` and ``via`` ``"human"``
  unless ``agent_reply``; ``into`` ``None`` unless ``merged``.
* ``tags`` is a JSON array of strings (empty strings allowed), returned as a tuple in
  the order given, duplicates kept.
* A heartbeat is ``{"type": "heartbeat", "ts": ...}`` on any topic; other fields,
  ``event_id`` and ``channel`` included, are ignored; a bad ``ts`` is ``schema``.
* ``ts``: see :mod:`cxpulse.schemas.timestamps`.

Two paths, one behaviour. ``parse_*_reference`` are the hand-written decoders above
rules describe; they decide every outcome and every error message. ``parse_*`` first
try a compiled fast path (:mod:`msgspec`, a typed struct per topic that rejects any
unknown field and every type but the usual one), which returns an event only for a
record whose every field is already in its plain, valid form, and hand anything else
(an extra field, ``7.0`` as a score, a heartbeat, any fault) to the reference decoder.
So the fast path can only make a valid record cheaper (a survey answer ~2.3 -> ~1.2 µs),
never change a result: a differential property test
(``tests/unit/test_fast_decoders.py``) holds the two to the same output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

import msgspec
import orjson
from cxpulse.schemas.timestamps import parse_ts

__all__ = [
    "MAX_RECORD_BYTES",
    "PARSERS",
    "REASONS",
    "CartEvent",
    "CustomerEvent",
    "Event",
    "Heartbeat",
    "Invalid",
    "Reason",
    "SurveyEvent",
    "TicketEvent",
    "parse_cart",
    "parse_cart_reference",
    "parse_customer",
    "parse_customer_reference",
    "parse_survey",
    "parse_survey_reference",
    "parse_ticket",
    "parse_ticket_reference",
]

Reason = Literal["invalid_json", "schema", "out_of_range", "too_large", "late"]
#: Every dead-letter reason, in precedence order (``late`` is decided by the watermark).
REASONS: tuple[Reason, ...] = ("too_large", "invalid_json", "schema", "out_of_range", "late")

#: A record value strictly larger than this (1 MiB) is ``too_large``.
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that is not a valid event: ``reason`` is one of :data:`REASONS`."""

    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Control event: advances event time on its partition and nothing else."""

    ts: int


@dataclass(frozen=True, slots=True)
class SurveyEvent:
    event_id: str
    type: str  # "invitation_sent" | "answer"
    ts: int
    channel: str
    survey_id: str
    response_id: str
    customer_id: str
    question: str | None  # None for invitation_sent
    score: int | None  # None for invitation_sent


@dataclass(frozen=True, slots=True)
class CartEvent:
    event_id: str
    type: str  # "item_added" | "item_removed" | "checkout_started" | "purchased"
    ts: int
    channel: str
    cart_id: str
    customer_id: str | None
    cart_value: float


@dataclass(frozen=True, slots=True)
class TicketEvent:
    event_id: str
    type: str  # created, agent_reply, customer_reply, solved, reopened, closed, merged
    ts: int
    channel: str
    ticket_id: str
    priority: str  # "normal" unless created
    tags: tuple[str, ...]  # () unless created
    public: bool  # True unless agent_reply
    via: str  # "human" unless agent_reply
    into: str | None  # None unless merged


@dataclass(frozen=True, slots=True)
class CustomerEvent:
    event_id: str
    type: str  # one of CUSTOMER_TYPES
    ts: int
    channel: str
    customer_id: str | None  # None for lead_created and acquisition_spend
    lead_id: str | None  # lead_created (required), signed_up (optional)
    referred_by: str | None  # signed_up only
    mrr: float | None  # subscription_started / subscription_changed only
    plan: str | None  # subscription_started / subscription_changed only
    amount: float | None  # acquisition_spend only


Event = SurveyEvent | CartEvent | TicketEvent | CustomerEvent

_T = TypeVar("_T")


def _builder(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for a frozen slots dataclass, about twice as fast.

    A frozen dataclass ``__init__`` goes through ``object.__setattr__`` per field (1.4 us
    for a survey event, the largest single cost of a parse). This writes the slots through
    their descriptors instead; the instance is identical (same class, equal, still frozen).
    The generated code is the same shape as the one :mod:`dataclasses` itself generates.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
    body = "".join(f"    _set_{name}(o, {name})\n" for name in names)
    exec(f"def build({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n", namespace)
    build: Callable[..., _T] = namespace["build"]
    return build


_survey_event = _builder(SurveyEvent)
_cart_event = _builder(CartEvent)
_ticket_event = _builder(TicketEvent)
_customer_event = _builder(CustomerEvent)

SURVEY_TYPES = frozenset({"invitation_sent", "answer"})
CART_TYPES = frozenset({"item_added", "item_removed", "checkout_started", "purchased"})
TICKET_TYPES = frozenset(
    {"created", "agent_reply", "customer_reply", "solved", "reopened", "closed", "merged"}
)
CUSTOMER_TYPES = frozenset(
    {
        "lead_created",
        "signed_up",
        "subscription_started",
        "subscription_changed",
        "subscription_cancelled",
        "acquisition_spend",
    }
)
#: customer event types whose ``customer_id`` is required (the others have none)
CUSTOMER_KEYED = CUSTOMER_TYPES - {"lead_created", "acquisition_spend"}
#: customer event types whose ``channel`` is required (the source of a lead, signup, spend)
CHANNEL_REQUIRED = frozenset({"lead_created", "signed_up", "acquisition_spend"})
MRR_TYPES = frozenset({"subscription_started", "subscription_changed"})
#: question -> inclusive score range.
SCORE_RANGES: Mapping[str, tuple[int, int]] = {
    "nps": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "switch": (0, 10),
    "repurchase": (0, 10),
    "overall": (0, 10),
}
PRIORITIES = frozenset({"urgent", "high", "normal", "low"})
VIAS = frozenset({"human", "bot", "automation"})
MAX_EVENT_ID_CHARS = 128

_INF = float("inf")
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}

# ---------------------------------------------------------------------------- errors
# Built only on the error path; the happy path makes no calls besides orjson and parse_ts.


def _show(value: object) -> str:
    """A short rendering of a JSON value for an error message."""
    if type(value) is str:
        return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
    if type(value) in (int, float):
        return repr(value)
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _schema(error: str) -> Invalid:
    return Invalid("schema", error)


def _bad_string(name: str, value: object) -> Invalid:
    if value is None:
        return _schema(f"{name}: missing or null")
    if type(value) is str:
        return _schema(f"{name}: empty string")
    return _schema(f"{name}: expected a string, got {_JSON_TYPES.get(type(value), '?')}")


def _bad_enum(name: str, value: object, allowed: frozenset[str] | Mapping[str, Any]) -> Invalid:
    if value is None:
        return _schema(f"{name}: missing or null")
    if type(value) is not str:
        return _schema(f"{name}: expected a string, got {_JSON_TYPES.get(type(value), '?')}")
    return _schema(f"{name}: {_show(value)} is not one of {', '.join(sorted(allowed))}")


def _bad_ts(value: object) -> Invalid:
    if value is None:
        return _schema("ts: missing or null")
    if type(value) in (int, float):
        return _schema(f"ts: {value!r} is not an integral epoch-ms value in years 0001-9999")
    return _schema(
        f"ts: {_show(value)} is not epoch milliseconds or an RFC 3339 time with an offset"
    )


def _bad_event_id(value: object) -> Invalid:
    if type(value) is str:
        return _schema(f"event_id: {len(value)} characters, expected 1-{MAX_EVENT_ID_CHARS}")
    return _bad_string("event_id", value)


# ---------------------------------------------------------------------------- common


def _decode(value: bytes | None) -> dict[str, Any] | Invalid:
    """Size check and JSON decoding; returns the top-level object or an Invalid."""
    if value is None:
        return Invalid("invalid_json", "value: null record (tombstone), expected a JSON object")
    size = len(value)
    if size > MAX_RECORD_BYTES:
        return Invalid(
            "too_large", f"value: {size} bytes, over the {MAX_RECORD_BYTES}-byte (1 MiB) limit"
        )
    try:
        obj = _loads(value)
    except _JSONDecodeError as exc:
        return Invalid("invalid_json", f"value: not valid UTF-8 JSON: {exc}")
    if type(obj) is not dict:
        return _schema(f"value: expected a JSON object, got {_JSON_TYPES.get(type(obj), '?')}")
    return obj


def _header(
    obj: dict[str, Any], types: frozenset[str]
) -> tuple[str, str, int, str] | Heartbeat | Invalid:
    """Fields common to every event: ``(event_id, type, ts, channel)``, or a heartbeat."""
    etype = obj.get("type")
    if type(etype) is not str or etype not in types:
        if etype == "heartbeat":
            raw = obj.get("ts")
            ts = parse_ts(raw)
            return _bad_ts(raw) if ts is None else Heartbeat(ts)
        return _bad_enum("type", etype, types | {"heartbeat"})
    event_id = obj.get("event_id")
    if type(event_id) is not str or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        return _bad_event_id(event_id)
    raw = obj.get("ts")
    ts = parse_ts(raw)
    if ts is None:
        return _bad_ts(raw)
    channel = obj.get("channel")
    if channel is None:
        channel = "unknown"
    elif type(channel) is not str:
        return _bad_string("channel", channel)
    return event_id, etype, ts, channel


def _out_of_range_number(name: str, value: float) -> Invalid:
    return Invalid("out_of_range", f"{name}: {value!r} is not a finite number >= 0")


# ---------------------------------------------------------------------------- topics


def parse_survey_reference(value: bytes | None) -> SurveyEvent | Heartbeat | Invalid:
    """Decode a ``cx.survey.events`` record (SPEC §1.1)."""
    obj = _decode(value)
    if isinstance(obj, Invalid):
        return obj
    head = _header(obj, SURVEY_TYPES)
    if not isinstance(head, tuple):
        return head
    event_id, etype, ts, channel = head
    survey_id = obj.get("survey_id")
    if type(survey_id) is not str or not survey_id:
        return _bad_string("survey_id", survey_id)
    response_id = obj.get("response_id")
    if type(response_id) is not str or not response_id:
        return _bad_string("response_id", response_id)
    customer_id = obj.get("customer_id")
    if type(customer_id) is not str or not customer_id:
        return _bad_string("customer_id", customer_id)
    if etype == "invitation_sent":
        return _survey_event(
            event_id, etype, ts, channel, survey_id, response_id, customer_id, None, None
        )
    question = obj.get("question")
    if type(question) is not str or question not in SCORE_RANGES:
        return _bad_enum("question", question, SCORE_RANGES)
    score = obj.get("score")
    if type(score) is not int:
        if type(score) is not float:
            if score is None:
                return _schema("score: missing or null")
            return _schema(f"score: expected an integer, got {_JSON_TYPES.get(type(score), '?')}")
        if score != score or score in (_INF, -_INF):
            return Invalid("out_of_range", f"score: {score!r} is not a finite number")
        if not score.is_integer():
            return _schema(f"score: expected an integer, got {score!r}")
        score = int(score)
    low, high = SCORE_RANGES[question]
    if not low <= score <= high:
        return Invalid(
            "out_of_range", f"score: {score} is out of range {low}-{high} for {question}"
        )
    return _survey_event(
        event_id, etype, ts, channel, survey_id, response_id, customer_id, question, score
    )


def parse_cart_reference(value: bytes | None) -> CartEvent | Heartbeat | Invalid:
    """Decode a ``cx.cart.events`` record (SPEC §1.2)."""
    obj = _decode(value)
    if isinstance(obj, Invalid):
        return obj
    head = _header(obj, CART_TYPES)
    if not isinstance(head, tuple):
        return head
    event_id, etype, ts, channel = head
    cart_id = obj.get("cart_id")
    if type(cart_id) is not str or not cart_id:
        return _bad_string("cart_id", cart_id)
    customer_id = obj.get("customer_id")
    if customer_id is not None and (type(customer_id) is not str or not customer_id):
        return _bad_string("customer_id", customer_id)
    cart_value = obj.get("cart_value")
    if type(cart_value) is not float:
        if type(cart_value) is not int:
            if cart_value is None:
                return _schema("cart_value: missing or null")
            return _schema(
                f"cart_value: expected a number, got {_JSON_TYPES.get(type(cart_value), '?')}"
            )
        cart_value = float(cart_value)
    if not 0.0 <= cart_value < _INF:  # also false for NaN
        return _out_of_range_number("cart_value", cart_value)
    return _cart_event(event_id, etype, ts, channel, cart_id, customer_id, cart_value)


def parse_ticket_reference(value: bytes | None) -> TicketEvent | Heartbeat | Invalid:
    """Decode a ``cx.ticket.events`` record (SPEC §1.3)."""
    obj = _decode(value)
    if isinstance(obj, Invalid):
        return obj
    head = _header(obj, TICKET_TYPES)
    if not isinstance(head, tuple):
        return head
    event_id, etype, ts, channel = head
    ticket_id = obj.get("ticket_id")
    if type(ticket_id) is not str or not ticket_id:
        return _bad_string("ticket_id", ticket_id)
    priority = "normal"
    tags: tuple[str, ...] = ()
    public = True
    via = "human"
    into = None
    if etype == "created":
        raw_priority = obj.get("priority")
        if raw_priority is not None:
            if type(raw_priority) is not str or raw_priority not in PRIORITIES:
                return _bad_enum("priority", raw_priority, PRIORITIES)
            priority = raw_priority
        raw_tags = obj.get("tags")
        if raw_tags is not None:
            if type(raw_tags) is not list:
                return _schema(
                    f"tags: expected an array of strings, got {_JSON_TYPES.get(type(raw_tags))}"
                )
            for i, tag in enumerate(raw_tags):
                if type(tag) is not str:
                    return _schema(
                        f"tags[{i}]: expected a string, got {_JSON_TYPES.get(type(tag), '?')}"
                    )
            tags = tuple(raw_tags)
    elif etype == "agent_reply":
        raw_public = obj.get("public")
        if raw_public is not None:
            if type(raw_public) is not bool:
                return _schema(
                    f"public: expected a boolean, got {_JSON_TYPES.get(type(raw_public), '?')}"
                )
            public = raw_public
        raw_via = obj.get("via")
        if raw_via is not None:
            if type(raw_via) is not str or raw_via not in VIAS:
                return _bad_enum("via", raw_via, VIAS)
            via = raw_via
    elif etype == "merged":
        into = obj.get("into")
        if type(into) is not str or not into:
            return _bad_string("into", into)
    return _ticket_event(event_id, etype, ts, channel, ticket_id, priority, tags, public, via, into)


def _money(obj: dict[str, Any], name: str) -> float | Invalid:
    """A required number ≥ 0 (``mrr``, ``amount``): schema checks only; range by the caller."""
    value = obj.get(name)
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if value is None:
        return _schema(f"{name}: missing or null")
    return _schema(f"{name}: expected a number, got {_JSON_TYPES.get(type(value), '?')}")


def parse_customer_reference(value: bytes | None) -> CustomerEvent | Heartbeat | Invalid:
    """Decode a ``cx.customer.events`` record (SPEC §1.5)."""
    obj = _decode(value)
    if isinstance(obj, Invalid):
        return obj
    head = _header(obj, CUSTOMER_TYPES)
    if not isinstance(head, tuple):
        return head
    event_id, etype, ts, channel = head
    customer_id = lead_id = referred_by = plan = None
    mrr = amount = None
    if etype in CUSTOMER_KEYED:
        customer_id = obj.get("customer_id")
        if type(customer_id) is not str or not customer_id:
            return _bad_string("customer_id", customer_id)
    if etype in CHANNEL_REQUIRED and obj.get("channel") is None:
        return _schema("channel: missing or null")
    if etype == "lead_created":
        lead_id = obj.get("lead_id")
        if type(lead_id) is not str or not lead_id:
            return _bad_string("lead_id", lead_id)
    elif etype == "signed_up":
        for name in ("lead_id", "referred_by"):
            raw = obj.get(name)
            if raw is not None and (type(raw) is not str or not raw):
                return _bad_string(name, raw)
        lead_id, referred_by = obj.get("lead_id"), obj.get("referred_by")
    elif etype in MRR_TYPES:
        plan = obj.get("plan")
        if plan is not None and type(plan) is not str:
            return _bad_string("plan", plan)
        money = _money(obj, "mrr")
        if isinstance(money, Invalid):
            return money
        if not 0.0 <= money < _INF:
            return _out_of_range_number("mrr", money)
        mrr = money
    elif etype == "acquisition_spend":
        money = _money(obj, "amount")
        if isinstance(money, Invalid):
            return money
        if not 0.0 <= money < _INF:
            return _out_of_range_number("amount", money)
        amount = money
    return _customer_event(
        event_id, etype, ts, channel, customer_id, lead_id, referred_by, mrr, plan, amount
    )


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


class _SurveyWire(_Wire, forbid_unknown_fields=True, gc=False):
    survey_id: str | None = None
    response_id: str | None = None
    customer_id: str | None = None
    question: str | None = None
    score: int | None = None


class _CartWire(_Wire, forbid_unknown_fields=True, gc=False):
    cart_id: str | None = None
    customer_id: str | None = None
    cart_value: float | None = None


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


_survey_wire = msgspec.json.Decoder(_SurveyWire).decode
_cart_wire = msgspec.json.Decoder(_CartWire).decode
_ticket_wire = msgspec.json.Decoder(_TicketWire).decode
_customer_wire = msgspec.json.Decoder(_CustomerWire).decode
_WireError = msgspec.DecodeError  # a ValidationError is one too


def _fast_survey(value: bytes) -> SurveyEvent | None:
    """The event, when ``value`` is a plain valid survey record; else ``None``."""
    try:
        w = _survey_wire(value)
    except _WireError:
        return None
    event_id, ts = w.event_id, parse_ts(w.ts)
    if ts is None or event_id is None or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        return None
    survey_id, response_id, customer_id = w.survey_id, w.response_id, w.customer_id
    if not survey_id or not response_id or not customer_id:
        return None
    channel = "unknown" if w.channel is None else w.channel
    if w.type == "invitation_sent":
        return _survey_event(
            event_id, w.type, ts, channel, survey_id, response_id, customer_id, None, None
        )
    question, score = w.question, w.score
    if w.type != "answer" or question is None or score is None:
        return None
    bounds = SCORE_RANGES.get(question)
    if bounds is None or not bounds[0] <= score <= bounds[1]:
        return None
    return _survey_event(
        event_id, w.type, ts, channel, survey_id, response_id, customer_id, question, score
    )


def _fast_cart(value: bytes) -> CartEvent | None:
    """The event, when ``value`` is a plain valid cart record; else ``None``."""
    try:
        w = _cart_wire(value)
    except _WireError:
        return None
    event_id, ts, cart_id, cart_value = w.event_id, parse_ts(w.ts), w.cart_id, w.cart_value
    if ts is None or event_id is None or not 0 < len(event_id) <= MAX_EVENT_ID_CHARS:
        return None
    if w.type not in CART_TYPES or not cart_id or cart_value is None:
        return None
    if w.customer_id == "" or not 0.0 <= cart_value < _INF:
        return None
    channel = "unknown" if w.channel is None else w.channel
    return _cart_event(event_id, w.type, ts, channel, cart_id, w.customer_id, cart_value)


def _fast_ticket(value: bytes) -> TicketEvent | None:
    """The event, when ``value`` is a plain valid ticket record; else ``None``."""
    try:
        w = _ticket_wire(value)
    except _WireError:
        return None
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
    return _ticket_event(event_id, etype, ts, channel, ticket_id, priority, tags, public, via, into)


def _fast_customer(value: bytes) -> CustomerEvent | None:
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
    return _customer_event(
        event_id, etype, ts, channel, customer_id, lead_id, referred_by, mrr, plan, amount
    )


def parse_survey(value: bytes | None) -> SurveyEvent | Heartbeat | Invalid:
    """Decode a ``cx.survey.events`` record (SPEC §1.1): fast path, else the reference."""
    if value is not None and len(value) <= MAX_RECORD_BYTES:
        event = _fast_survey(value)
        if event is not None:
            return event
    return parse_survey_reference(value)


def parse_cart(value: bytes | None) -> CartEvent | Heartbeat | Invalid:
    """Decode a ``cx.cart.events`` record (SPEC §1.2): fast path, else the reference."""
    if value is not None and len(value) <= MAX_RECORD_BYTES:
        event = _fast_cart(value)
        if event is not None:
            return event
    return parse_cart_reference(value)


def parse_ticket(value: bytes | None) -> TicketEvent | Heartbeat | Invalid:
    """Decode a ``cx.ticket.events`` record (SPEC §1.3): fast path, else the reference."""
    if value is not None and len(value) <= MAX_RECORD_BYTES:
        event = _fast_ticket(value)
        if event is not None:
            return event
    return parse_ticket_reference(value)


def parse_customer(value: bytes | None) -> CustomerEvent | Heartbeat | Invalid:
    """Decode a ``cx.customer.events`` record (SPEC §1.5): fast path, else the reference."""
    if value is not None and len(value) <= MAX_RECORD_BYTES:
        event = _fast_customer(value)
        if event is not None:
            return event
    return parse_customer_reference(value)


PARSERS: Mapping[str, Callable[[bytes | None], Event | Heartbeat | Invalid]] = {
    "survey": parse_survey,
    "cart": parse_cart,
    "ticket": parse_ticket,
    "customer": parse_customer,
}
