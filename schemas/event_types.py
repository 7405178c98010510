"""The typed input events of the four topics (SPEC §1), their enums and limits.

The four event types are frozen msgspec structs without validation of their own
(the decoders in :mod:`cxpulse.schemas.validation` and :mod:`cxpulse.schemas.fastpath`
build them; :mod:`cxpulse.schemas.events` is the entry point): built positionally in
C, ~55 ns for a survey event against ~530 ns for a frozen slots dataclass, once per
input record. ``gc=False``: they hold strings, numbers and tuples of strings only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from cxpulse.schemas.timestamps import MAX_TS_MS, MIN_TS_MS

Reason = Literal["invalid_json", "schema", "out_of_range", "too_large", "late"]
#: Every dead-letter reason, in precedence order (``late`` is decided by the watermark).
REASONS: tuple[Reason, ...] = ("too_large", "invalid_json", "schema", "out_of_range", "late")

#: A record value strictly larger than this (1 MiB) is ``too_large``.
MAX_RECORD_BYTES = 1 << 20
#: the longest ``event_id`` accepted, in characters
MAX_EVENT_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class Invalid:
    """A record that is not a valid event: ``reason`` is one of :data:`REASONS`."""

    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Control event: advances event time on its partition and nothing else."""

    ts: int


#: a required string field that may not be empty (checked only when msgspec decodes)
_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class SurveyEvent(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A survey event; msgspec also decodes a plain valid record straight into it.

    The annotations' constraints and defaults apply only when msgspec decodes (the
    fast path, :mod:`cxpulse.schemas.fastpath`): they accept a subset of the valid
    records (integer ``ts``, no unknown field, ``channel`` absent or a string), never
    an invalid one. Built in code, the fields take whatever they are given.
    """

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_CHARS)]
    type: str  # "invitation_sent" | "answer" (the fast path checks it)
    ts: Annotated[int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
    survey_id: _NonEmpty
    response_id: _NonEmpty
    customer_id: _NonEmpty
    channel: str = "unknown"
    question: str | None = None  # None for invitation_sent
    score: int | None = None  # None for invitation_sent


class CartEvent(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A cart event; msgspec also decodes a plain valid record straight into it, as
    :class:`SurveyEvent` (the fast path checks the type; ``cart_value`` finite, which
    msgspec's float already is, and ``>= 0``). The defaulted fields come last, as
    msgspec requires: build it with keywords."""

    event_id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_EVENT_ID_CHARS)]
    type: str  # "item_added" | "item_removed" | "checkout_started" | "purchased"
    ts: Annotated[int, msgspec.Meta(ge=MIN_TS_MS, le=MAX_TS_MS)]
    cart_id: _NonEmpty
    cart_value: Annotated[float, msgspec.Meta(ge=0.0)]
    channel: str = "unknown"
    customer_id: _NonEmpty | None = None


class TicketEvent(msgspec.Struct, frozen=True, gc=False):
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


class CustomerEvent(msgspec.Struct, frozen=True, gc=False):
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

#: the decoders' names for the constructors: positional, in field order, but
#: ``cart_event`` (keywords: its defaulted fields come last)
survey_event = SurveyEvent
cart_event = CartEvent
ticket_event = TicketEvent
customer_event = CustomerEvent

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
