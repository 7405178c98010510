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

from cxpulse.schemas.event_types import (
    CART_TYPES,
    CUSTOMER_TYPES,
    MAX_RECORD_BYTES,
    PRIORITIES,
    REASONS,
    SCORE_RANGES,
    SURVEY_TYPES,
    TICKET_TYPES,
    VIAS,
    CartEvent,
    CustomerEvent,
    Event,
    Heartbeat,
    Invalid,
    Reason,
    SurveyEvent,
    TicketEvent,
)
from cxpulse.schemas.fastpath import fast_cart as _fast_cart
from cxpulse.schemas.fastpath import fast_customer as _fast_customer
from cxpulse.schemas.fastpath import fast_survey as _fast_survey
from cxpulse.schemas.fastpath import fast_ticket as _fast_ticket
from cxpulse.schemas.validation import (
    parse_cart_reference,
    parse_customer_reference,
    parse_survey_reference,
    parse_ticket_reference,
)

__all__ = [
    "CART_TYPES",
    "CUSTOMER_TYPES",
    "MAX_RECORD_BYTES",
    "PARSERS",
    "PRIORITIES",
    "REASONS",
    "SCORE_RANGES",
    "SURVEY_TYPES",
    "TICKET_TYPES",
    "VIAS",
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
