"""Table-driven tests of the input decoders (SPEC §1, §1.4) and of the ts forms."""

from __future__ import annotations

import gc
from typing import Any

import msgspec
import orjson
import pytest

from cxpulse.schemas.events import (
    MAX_RECORD_BYTES,
    PARSERS,
    REASONS,
    CartEvent,
    Heartbeat,
    Invalid,
    SurveyEvent,
    TicketEvent,
    parse_cart,
    parse_customer,
    parse_survey,
    parse_ticket,
)
from cxpulse.schemas.timestamps import MAX_TS_MS, MIN_TS_MS, format_ts, parse_ts

TS = 1_795_428_900_123  # 2026-11-23T10:15:00.123Z
TS_TEXT = "2026-11-23T10:15:00.123Z"

ANSWER: dict[str, Any] = {
    "event_id": "e-1",
    "type": "answer",
    "ts": TS,
    "channel": "web",
    "survey_id": "s-1",
    "response_id": "r-1",
    "customer_id": "c-1",
    "question": "nps",
    "score": 9,
}
INVITATION: dict[str, Any] = {
    "event_id": "e-2",
    "type": "invitation_sent",
    "ts": TS,
    "survey_id": "s-1",
    "response_id": "r-1",
    "customer_id": "c-1",
}
CART: dict[str, Any] = {
    "event_id": "e-3",
    "type": "purchased",
    "ts": TS,
    "cart_id": "k-1",
    "cart_value": 12.5,
}
TICKET: dict[str, Any] = {"event_id": "e-4", "type": "solved", "ts": TS, "ticket_id": "t-1"}


def enc(obj: object) -> bytes:
    return orjson.dumps(obj)


def with_(base: dict[str, Any], **changes: Any) -> bytes:
    """``base`` with fields replaced; a value of ``...`` removes the field."""
    merged = {**base, **changes}
    return enc({k: v for k, v in merged.items() if v is not ...})


def invalid(result: object, reason: str, field: str | None = None) -> Invalid:
    assert isinstance(result, Invalid), result
    assert result.reason == reason, result
    if field is not None:
        assert result.error.startswith(f"{field}"), result
    return result


# ------------------------------------------------------------------------ valid events


def test_survey_answer_full() -> None:
    assert parse_survey(enc(ANSWER)) == SurveyEvent(
        event_id="e-1",
        type="answer",
        ts=TS,
        channel="web",
        survey_id="s-1",
        response_id="r-1",
        customer_id="c-1",
        question="nps",
        score=9,
    )


def test_survey_invitation_minimal_defaults() -> None:
    assert parse_survey(enc(INVITATION)) == SurveyEvent(
        "e-2", "invitation_sent", TS, "s-1", "r-1", "c-1", "unknown", None, None
    )


def test_invitation_ignores_answer_fields() -> None:
    event = parse_survey(with_(INVITATION, question="bogus", score="x"))
    assert isinstance(event, SurveyEvent)
    assert (event.question, event.score) == (None, None)


@pytest.mark.parametrize(
    ("question", "low", "high"),
    [
        ("nps", 0, 10),
        ("switch", 0, 10),
        ("repurchase", 0, 10),
        ("overall", 0, 10),
        ("csat", 1, 5),
        ("ces", 1, 7),
    ],
)
def test_score_ranges(question: str, low: int, high: int) -> None:
    for score in (low, high):
        event = parse_survey(with_(ANSWER, question=question, score=score))
        assert isinstance(event, SurveyEvent)
        assert (event.question, event.score) == (question, score)
    for score in (low - 1, high + 1):
        bad = invalid(parse_survey(with_(ANSWER, question=question, score=score)), "out_of_range")
        assert bad.error == f"score: {score} is out of range {low}-{high} for {question}"


@pytest.mark.parametrize(
    ("score", "expected"),
    [(7, 7), (7.0, 7), (0.0, 0), (-0.0, 0), (10.0, 10)],
)
def test_integral_scores(score: object, expected: int) -> None:
    event = parse_survey(with_(ANSWER, score=score))
    assert isinstance(event, SurveyEvent)
    assert event.score == expected
    assert type(event.score) is int


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (7.5, "schema"),
        (0.1, "schema"),
        (True, "schema"),
        (False, "schema"),
        ("7", "schema"),
        ([7], "schema"),
        ({"v": 7}, "schema"),
        (None, "schema"),
        (..., "schema"),
        (11, "out_of_range"),
        (-1, "out_of_range"),
        (11.0, "out_of_range"),
        (2**63 - 1, "out_of_range"),
        (1e20, "out_of_range"),
    ],
)
def test_bad_scores(score: object, reason: str) -> None:
    invalid(parse_survey(with_(ANSWER, score=score)), reason, "score")


def test_cart_full_and_minimal() -> None:
    assert parse_cart(
        with_(CART, channel="app", customer_id="c-9", type="item_added", cart_value=3)
    ) == CartEvent(
        event_id="e-3",
        type="item_added",
        ts=TS,
        channel="app",
        cart_id="k-1",
        customer_id="c-9",
        cart_value=3.0,
    )
    event = parse_cart(enc(CART))
    assert event == CartEvent(
        event_id="e-3", type="purchased", ts=TS, cart_id="k-1", cart_value=12.5
    )


@pytest.mark.parametrize("etype", ["item_added", "item_removed", "checkout_started", "purchased"])
def test_cart_types(etype: str) -> None:
    event = parse_cart(with_(CART, type=etype))
    assert isinstance(event, CartEvent)
    assert event.type == etype


@pytest.mark.parametrize("value", [0, 0.0, -0.0, 1, 1e300, 2**64 - 1])
def test_cart_value_accepted(value: float) -> None:
    event = parse_cart(with_(CART, cart_value=value))
    assert isinstance(event, CartEvent)
    assert event.cart_value == float(value)
    assert type(event.cart_value) is float


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-0.01, "out_of_range"),
        (-1, "out_of_range"),
        (-1e300, "out_of_range"),
        ("1.0", "schema"),
        (True, "schema"),
        (None, "schema"),
        (..., "schema"),
        ([1], "schema"),
    ],
)
def test_cart_value_rejected(value: object, reason: str) -> None:
    invalid(parse_cart(with_(CART, cart_value=value)), reason, "cart_value")


def test_ticket_minimal_defaults() -> None:
    assert parse_ticket(enc(TICKET)) == TicketEvent(
        "e-4", "solved", TS, "unknown", "t-1", "normal", (), True, "human", None
    )


def test_ticket_created_full() -> None:
    event = parse_ticket(
        with_(TICKET, type="created", priority="urgent", tags=["vip", "billing"], channel="mail")
    )
    assert event == TicketEvent(
        "e-4", "created", TS, "mail", "t-1", "urgent", ("vip", "billing"), True, "human", None
    )


def test_ticket_created_nulls_are_defaults() -> None:
    event = parse_ticket(with_(TICKET, type="created", priority=None, tags=None, channel=None))
    assert isinstance(event, TicketEvent)
    assert (event.priority, event.tags, event.channel) == ("normal", (), "unknown")


@pytest.mark.parametrize(
    ("public", "via", "expected"),
    [
        (..., ..., (True, "human")),
        (None, None, (True, "human")),
        (False, "bot", (False, "bot")),
        (True, "automation", (True, "automation")),
    ],
)
def test_ticket_agent_reply(public: object, via: object, expected: tuple[bool, str]) -> None:
    event = parse_ticket(with_(TICKET, type="agent_reply", public=public, via=via))
    assert isinstance(event, TicketEvent)
    assert (event.public, event.via) == expected


def test_ticket_merged() -> None:
    event = parse_ticket(with_(TICKET, type="merged", into="t-0"))
    assert isinstance(event, TicketEvent)
    assert event.into == "t-0"


@pytest.mark.parametrize(
    "etype", ["customer_reply", "solved", "reopened", "closed", "agent_reply", "merged"]
)
def test_ticket_fields_of_other_types_ignored(etype: str) -> None:
    extra = {"into": "t-0"} if etype == "merged" else {}
    event = parse_ticket(with_(TICKET, type=etype, priority=42, tags="x", **extra))
    assert isinstance(event, TicketEvent)
    assert (event.priority, event.tags) == ("normal", ())
    if etype != "agent_reply":
        event = parse_ticket(with_(TICKET, type=etype, public="x", via=1, **extra))
        assert isinstance(event, TicketEvent)
        assert (event.public, event.via) == (True, "human")
    if etype != "merged":
        event = parse_ticket(with_(TICKET, type=etype, into=5))
        assert isinstance(event, TicketEvent)
        assert event.into is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "created", "priority": "critical"}, "priority"),
        ({"type": "created", "priority": 1}, "priority"),
        ({"type": "created", "tags": "vip"}, "tags"),
        ({"type": "created", "tags": ["vip", 3]}, "tags[1]"),
        ({"type": "created", "tags": [None]}, "tags[0]"),
        ({"type": "created", "tags": {"a": "b"}}, "tags"),
        ({"type": "agent_reply", "public": "true"}, "public"),
        ({"type": "agent_reply", "public": 1}, "public"),
        ({"type": "agent_reply", "via": "email"}, "via"),
        ({"type": "agent_reply", "via": ["bot"]}, "via"),
        ({"type": "merged"}, "into"),
        ({"type": "merged", "into": None}, "into"),
        ({"type": "merged", "into": ""}, "into"),
        ({"type": "merged", "into": 7}, "into"),
        ({"ticket_id": ...}, "ticket_id"),
        ({"ticket_id": 7}, "ticket_id"),
        ({"ticket_id": ""}, "ticket_id"),
    ],
)
def test_ticket_schema_faults(changes: dict[str, Any], field: str) -> None:
    invalid(parse_ticket(with_(TICKET, **changes)), "schema", field)


# ------------------------------------------------------------------------ common fields

ALL = [
    (parse_survey, ANSWER),
    (parse_survey, INVITATION),
    (parse_cart, CART),
    (parse_ticket, TICKET),
]
IDS = ["answer", "invitation", "cart", "ticket"]


@pytest.mark.parametrize(("parse", "base"), ALL, ids=IDS)
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_id": ...}, "event_id"),
        ({"event_id": None}, "event_id"),
        ({"event_id": ""}, "event_id"),
        ({"event_id": "x" * 129}, "event_id"),
        ({"event_id": 12}, "event_id"),
        ({"type": ...}, "type"),
        ({"type": None}, "type"),
        ({"type": "refund"}, "type"),
        ({"type": "Answer"}, "type"),
        ({"type": 1}, "type"),
        ({"type": ["answer"]}, "type"),
        ({"ts": ...}, "ts"),
        ({"ts": None}, "ts"),
        ({"ts": True}, "ts"),
        ({"ts": 1.5}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "2026-11-23T10:15:00"}, "ts"),
        ({"ts": "2026-11-23"}, "ts"),
        ({"ts": [TS]}, "ts"),
        ({"ts": MAX_TS_MS + 1}, "ts"),
        ({"channel": 3}, "channel"),
        ({"channel": ["web"]}, "channel"),
        ({"channel": False}, "channel"),
    ],
)
def test_common_schema_faults(
    parse: Any, base: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    invalid(parse(with_(base, **changes)), "schema", field)


@pytest.mark.parametrize(("parse", "base"), ALL, ids=IDS)
def test_common_accepted_variants(parse: Any, base: dict[str, Any]) -> None:
    cases: list[tuple[dict[str, Any], tuple[str, object]]] = [
        ({"event_id": "x"}, ("event_id", "x")),
        ({"event_id": "é" * 128}, ("event_id", "é" * 128)),
        ({"channel": None}, ("channel", "unknown")),
        ({"channel": ...}, ("channel", "unknown")),
        ({"channel": ""}, ("channel", "")),
        (
            {"channel": "A very long and odd channel ☎"},
            ("channel", "A very long and odd channel ☎"),
        ),
        ({"ts": TS_TEXT}, ("ts", TS)),
        ({"ts": float(TS)}, ("ts", TS)),
        ({"unknown_field": {"deep": [1, 2]}}, ("event_id", base["event_id"])),
    ]
    for changes, check in cases:
        event = parse(with_(base, **changes))
        assert not isinstance(event, Invalid), (changes, event)
        assert getattr(event, check[0]) == check[1]


@pytest.mark.parametrize("parse", [parse_survey, parse_cart, parse_ticket])
@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"type": "heartbeat", "ts": TS}, Heartbeat(TS)),
        ({"type": "heartbeat", "ts": TS_TEXT}, Heartbeat(TS)),
        ({"type": "heartbeat", "ts": 0}, Heartbeat(0)),
        ({"type": "heartbeat", "ts": TS, "event_id": 5, "channel": 7}, Heartbeat(TS)),
    ],
)
def test_heartbeat(parse: Any, record: dict[str, Any], expected: Heartbeat) -> None:
    assert parse(enc(record)) == expected


@pytest.mark.parametrize("parse", [parse_survey, parse_cart, parse_ticket])
@pytest.mark.parametrize("ts", [..., None, "soon", 1.5, True, [1]])
def test_heartbeat_bad_ts_is_schema(parse: Any, ts: object) -> None:
    invalid(parse(with_({"type": "heartbeat"}, ts=ts)), "schema", "ts")


@pytest.mark.parametrize(
    ("parse", "base", "field"),
    [
        (parse_survey, ANSWER, "survey_id"),
        (parse_survey, ANSWER, "response_id"),
        (parse_survey, ANSWER, "customer_id"),
        (parse_survey, INVITATION, "survey_id"),
        (parse_survey, INVITATION, "response_id"),
        (parse_survey, INVITATION, "customer_id"),
        (parse_cart, CART, "cart_id"),
        (parse_ticket, TICKET, "ticket_id"),
    ],
)
@pytest.mark.parametrize("bad", [..., None, "", 42, ["x"], {"id": "x"}, True])
def test_required_ids(parse: Any, base: dict[str, Any], field: str, bad: object) -> None:
    invalid(parse(with_(base, **{field: bad})), "schema", field)


@pytest.mark.parametrize(("bad", "reason"), [("", "schema"), (5, "schema"), (None, None)])
def test_cart_optional_customer_id(bad: object, reason: str | None) -> None:
    result = parse_cart(with_(CART, customer_id=bad))
    if reason is None:
        assert isinstance(result, CartEvent)
        assert result.customer_id is None
    else:
        invalid(result, reason, "customer_id")


@pytest.mark.parametrize("question", ["NPS", "", "effort", 3, None, ...])
def test_bad_question(question: object) -> None:
    invalid(parse_survey(with_(ANSWER, question=question)), "schema", "question")


# ------------------------------------------------------------------------ bad records


@pytest.mark.parametrize("parse", [parse_survey, parse_cart, parse_ticket])
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "invalid_json"),
        (b"", "invalid_json"),
        (b"{", "invalid_json"),
        (b"not json", "invalid_json"),
        (b'{"type": "heartbeat", "ts": NaN}', "invalid_json"),
        (b'{"score": Infinity}', "invalid_json"),
        (b'{"cart_value": 1e400}', "invalid_json"),
        (b'{"a": "\xff"}', "invalid_json"),
        (b'{"a": "\xed\xa0\x80"}', "invalid_json"),  # UTF-8-encoded surrogate
        (b'{"a": "\\ud800"}', "invalid_json"),  # lone surrogate escape
        (b"\xef\xbb\xbf{}", "invalid_json"),  # byte order mark
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b"[]", "schema"),
        (b"null", "schema"),
        (b'"text"', "schema"),
        (b"42", "schema"),
        (b"{}", "schema"),
    ],
)
def test_bad_records(parse: Any, value: bytes | None, reason: str) -> None:
    invalid(parse(value), reason)


@pytest.mark.parametrize(
    ("parse", "base"), [(parse_survey, INVITATION), (parse_cart, CART), (parse_ticket, TICKET)]
)
def test_size_limit(parse: Any, base: dict[str, Any]) -> None:
    at_limit = enc(base) + b" " * (MAX_RECORD_BYTES - len(enc(base)))
    assert len(at_limit) == MAX_RECORD_BYTES
    assert not isinstance(parse(at_limit), Invalid)
    bad = invalid(parse(at_limit + b" "), "too_large", "value")
    assert str(MAX_RECORD_BYTES + 1) in bad.error
    # decided before parsing: too_large wins over invalid_json
    invalid(parse(b"\xff" * (MAX_RECORD_BYTES + 1)), "too_large")


# ------------------------------------------------------------------------ precedence


@pytest.mark.parametrize(
    ("parse", "value", "reason", "field"),
    [
        # schema beats out_of_range, whatever the field order
        (parse_survey, with_(ANSWER, response_id=..., score=99), "schema", "response_id"),
        (parse_survey, with_(ANSWER, ts="bad", score=99), "schema", "ts"),
        (parse_survey, with_(ANSWER, channel=1, score=-5), "schema", "channel"),
        (parse_cart, with_(CART, customer_id=7, cart_value=-1), "schema", "customer_id"),
        (parse_cart, with_(CART, event_id="", cart_value=-1), "schema", "event_id"),
        # invalid_json beats schema
        (parse_survey, b'{"type": "nope", "score": NaN}', "invalid_json", None),
        # too_large beats invalid_json
        (parse_cart, b"{" * (MAX_RECORD_BYTES + 1), "too_large", None),
    ],
)
def test_precedence(parse: Any, value: bytes, reason: str, field: str | None) -> None:
    invalid(parse(value), reason, field)


def test_first_schema_fault_is_named() -> None:
    bad = invalid(parse_survey(with_(ANSWER, survey_id=1, customer_id=2)), "schema")
    assert bad.error == "survey_id: expected a string, got integer"


def test_error_messages_are_short() -> None:
    bad = invalid(parse_survey(with_(ANSWER, question="q" * 10_000)), "schema", "question")
    assert len(bad.error) < 200


# ------------------------------------------------------------------------ API shape


def test_parsers_mapping() -> None:
    assert PARSERS == {
        "survey": parse_survey,
        "cart": parse_cart,
        "ticket": parse_ticket,
        "customer": parse_customer,
    }
    assert set(REASONS) == {"invalid_json", "schema", "out_of_range", "too_large", "late"}


def test_events_are_frozen_slotted() -> None:
    event = parse_survey(enc(ANSWER))
    assert isinstance(event, SurveyEvent)
    with pytest.raises(AttributeError):
        event.score = 3  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert event == SurveyEvent(
        **{f.name: getattr(event, f.name) for f in msgspec.structs.fields(event)}
    )
    assert hash(event) == hash(msgspec.structs.replace(event))
    assert not gc.is_tracked(event)  # gc=False: the collector never scans events


# ------------------------------------------------------------------------ timestamps


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TS, TS),
        (0, 0),
        (-1, -1),
        (float(TS), TS),
        (MIN_TS_MS, MIN_TS_MS),
        (MAX_TS_MS, MAX_TS_MS),
        ("2026-11-23T10:15:00.123Z", TS),
        ("2026-11-23t10:15:00.123z", TS),
        ("2026-11-23 10:15:00.123Z", TS),
        ("2026-11-23T11:15:00.123+01:00", TS),
        ("2026-11-23T05:00:00.123-05:15", TS),
        ("2026-11-23T10:15:00.123-00:00", TS),
        ("2026-11-23T10:15:00.123999999Z", TS),  # truncated, not rounded
        ("2026-11-23T10:15:00.1Z", TS - 23),
        ("2026-11-23T10:15:00.12Z", TS - 3),
        ("2026-11-23T10:15:00Z", TS - 123),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("2016-12-31T23:59:60Z", 1_483_228_800_000),  # leap second: next second
        ("0001-01-01T00:00:00Z", MIN_TS_MS),
        ("9999-12-31T23:59:59.999Z", MAX_TS_MS),
    ],
)
def test_parse_ts_accepts(value: object, expected: int) -> None:
    assert parse_ts(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        1.5,
        float("nan"),
        float("inf"),
        MAX_TS_MS + 1,
        MIN_TS_MS - 1,
        1e300,
        [TS],
        {"ms": TS},
        "",
        str(TS),
        "2026-11-23T10:15:00",  # naive
        "2026-11-23T10:15:00.123",  # naive
        "2026-11-23",
        "2026-11-23T10:15Z",  # seconds required
        "2026-11-23T10:15:00.Z",
        "2026-11-23T10:15:00+0100",
        "2026-11-23T10:15:00+01",
        "2026-11-23T10:15:00 Z",
        " 2026-11-23T10:15:00Z",
        "2026-11-23T10:15:00Z ",
        "2026-11-23X10:15:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T10:60:00Z",
        "2026-11-23T10:15:61Z",
        "2026-11-23T10:15:00+24:00",
        "2026-11-23T10:15:00+01:60",
        "0001-01-01T00:00:00+00:01",  # before year 1 in UTC
        "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC
        "\uff12\uff10\uff12\uff16-11-23T10:15:00Z",  # fullwidth digits
        "٢٠٢٦-11-23T10:15:00Z",  # Arabic-Indic digits
    ],
)
def test_parse_ts_rejects(value: object) -> None:
    assert parse_ts(value) is None


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (TS, TS_TEXT),
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (5, "1970-01-01T00:00:00.005Z"),
        (MIN_TS_MS, "0001-01-01T00:00:00.000Z"),
        (MAX_TS_MS, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_format_ts(ms: int, text: str) -> None:
    assert format_ts(ms) == text
    assert parse_ts(text) == ms
