"""The reference decoders of the input topics: every rule of SPEC §1, by hand.

They define the result for every input, invalid ones included (the dead-letter
reason and a message naming the field); :mod:`cxpulse.schemas.fastpath` must
agree with them on everything it accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

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
    SURVEY_TYPES,
    TICKET_TYPES,
    VIAS,
    CartEvent,
    CustomerEvent,
    Heartbeat,
    Invalid,
    SurveyEvent,
    TicketEvent,
    cart_event,
    customer_event,
    survey_event,
    ticket_event,
)
from cxpulse.schemas.timestamps import parse_ts

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
        return survey_event(event_id, etype, ts, survey_id, response_id, customer_id, channel)
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
    return survey_event(
        event_id, etype, ts, survey_id, response_id, customer_id, channel, question, score
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
    return cart_event(
        event_id=event_id,
        type=etype,
        ts=ts,
        channel=channel,
        cart_id=cart_id,
        customer_id=customer_id,
        cart_value=cart_value,
    )


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
    return ticket_event(event_id, etype, ts, channel, ticket_id, priority, tags, public, via, into)


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
    return customer_event(
        event_id, etype, ts, channel, customer_id, lead_id, referred_by, mrr, plan, amount
    )
