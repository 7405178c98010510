"""Property tests of the input decoders: they never raise and classify every input."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpulse.schemas.events import (
    CART_TYPES,
    MAX_RECORD_BYTES,
    PRIORITIES,
    SCORE_RANGES,
    SURVEY_TYPES,
    TICKET_TYPES,
    VIAS,
    CartEvent,
    Heartbeat,
    Invalid,
    SurveyEvent,
    TicketEvent,
    parse_cart,
    parse_survey,
    parse_ticket,
)
from cxpulse.schemas.timestamps import MAX_TS_MS, MIN_TS_MS, format_ts

PARSE_REASONS = {"invalid_json", "schema", "out_of_range", "too_large"}
EVENT_CLASS: dict[Any, type[SurveyEvent | CartEvent | TicketEvent]] = {
    parse_survey: SurveyEvent,
    parse_cart: CartEvent,
    parse_ticket: TicketEvent,
}
PARSERS = st.sampled_from([parse_survey, parse_cart, parse_ticket])
FIELDS = sorted(
    {f.name for cls in (SurveyEvent, CartEvent, TicketEvent) for f in msgspec.structs.fields(cls)}
)
ALL_TYPES = sorted(SURVEY_TYPES | CART_TYPES | TICKET_TYPES | {"heartbeat"})

FAST = settings(max_examples=300, deadline=None)
SLOW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.data_too_large])


def check(parse: Any, value: bytes | None) -> Any:
    """Parse and assert the result is well-formed, whatever the input."""
    result = parse(value)
    if isinstance(result, Invalid):
        assert result.reason in PARSE_REASONS, result
        assert isinstance(result.error, str)
        assert result.error
        assert len(result.error) < 400, result.error
    elif isinstance(result, Heartbeat):
        assert type(result.ts) is int
        assert MIN_TS_MS <= result.ts <= MAX_TS_MS
    else:
        assert type(result) is EVENT_CLASS[parse], result
        assert type(result.event_id) is str
        assert 1 <= len(result.event_id) <= 128
        assert type(result.ts) is int
        assert MIN_TS_MS <= result.ts <= MAX_TS_MS
        assert type(result.channel) is str
        orjson.dumps(msgspec.structs.asdict(result))  # downstream can always re-serialize it
    return result


# ------------------------------------------------------------------ arbitrary input

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_trees = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
# Objects that look like events: the real field names and types, any values.
event_like = st.dictionaries(
    st.sampled_from([*FIELDS, "type", "event_id", "ts"]),
    json_trees
    | st.sampled_from(ALL_TYPES)
    | st.sampled_from(sorted(SCORE_RANGES) + sorted(PRIORITIES) + sorted(VIAS))
    | st.integers(min_value=-5, max_value=15)
    | st.builds(format_ts, st.integers(min_value=MIN_TS_MS, max_value=MAX_TS_MS)),
    max_size=12,
)


@FAST
@given(parse=PARSERS, value=st.binary(max_size=300))
def test_random_bytes(parse: Any, value: bytes) -> None:
    check(parse, value)


@FAST
@given(parse=PARSERS, tree=json_trees)
def test_random_json_trees(parse: Any, tree: object) -> None:
    check(parse, orjson.dumps(tree))


@FAST
@given(parse=PARSERS, obj=event_like)
def test_random_event_like_objects(parse: Any, obj: dict[str, Any]) -> None:
    check(parse, orjson.dumps(obj))


@FAST
@given(
    parse=PARSERS,
    depth=st.integers(min_value=1, max_value=5000),
    opener=st.sampled_from([b"[", b'{"a":']),
)
def test_deep_nesting(parse: Any, depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    result = check(parse, opener * depth + b"1" + closer * depth)
    assert isinstance(result, Invalid)
    assert result.reason in {"schema", "invalid_json"}  # never an event, never a crash


@FAST
@given(
    parse=PARSERS,
    literal=st.sampled_from(
        [b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"1e400", b"-1e999"]
    ),
    field=st.sampled_from(["ts", "score", "cart_value", "event_id", "extra"]),
)
def test_non_finite_literals_are_invalid_json(parse: Any, literal: bytes, field: str) -> None:
    raw = (
        b'{"type": "answer", "event_id": "e", "ts": 1, "' + field.encode() + b'": ' + literal + b"}"
    )
    result = check(parse, raw)
    assert isinstance(result, Invalid)
    assert result.reason == "invalid_json"


BASES: dict[str, tuple[Any, bytes]] = {
    "ts": (parse_ticket, b'{"type": "solved", "event_id": "e", "ticket_id": "t", "ts": '),
    "score": (
        parse_survey,
        b'{"type": "answer", "event_id": "e", "ts": 1, "survey_id": "s", "response_id": "r",'
        b' "customer_id": "c", "question": "nps", "score": ',
    ),
    "cart_value": (
        parse_cart,
        b'{"type": "purchased", "event_id": "e", "ts": 1, "cart_id": "k", "cart_value": ',
    ),
}


@FAST
@given(
    field=st.sampled_from(sorted(BASES)),
    digits=st.integers(min_value=20, max_value=400),
    negative=st.booleans(),
)
def test_huge_integers(field: str, digits: int, negative: bool) -> None:
    """Beyond 64 bits orjson reads a float; past a double's range it is invalid_json."""
    parse, prefix = BASES[field]
    result = check(parse, prefix + (b"-" if negative else b"") + b"9" * digits + b"}")
    if digits >= 309:  # 9.99e308 overflows a double
        assert result == Invalid("invalid_json", getattr(result, "error", ""))
    elif field == "ts":
        assert result == Invalid("schema", getattr(result, "error", ""))
    elif field == "score" or negative:
        assert result == Invalid("out_of_range", getattr(result, "error", ""))
    else:
        assert isinstance(result, CartEvent)
        assert result.cart_value == float("9" * digits)


# ------------------------------------------------------------------ valid events


@st.composite
def ts_values(draw: st.DrawFn) -> tuple[object, int]:
    ms = draw(st.integers(min_value=MIN_TS_MS, max_value=MAX_TS_MS))
    form = draw(st.sampled_from(["int", "float", "text"]))
    if form == "text":
        return format_ts(ms), ms
    if form == "float" and abs(ms) < 2**53:
        return float(ms), ms
    return ms, ms


ids = st.text(min_size=1, max_size=24)
unknown_fields = st.dictionaries(
    st.text(max_size=10).filter(lambda k: k not in FIELDS), json_trees, max_size=3
)


@st.composite
def common(draw: st.DrawFn, etype: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(wire fields, expected event fields) shared by every type."""
    ts_wire, ts = draw(ts_values())
    event_id = draw(st.text(min_size=1, max_size=128))
    wire: dict[str, Any] = {**draw(unknown_fields), "event_id": event_id, "type": etype}
    wire["ts"] = ts_wire
    channel = draw(st.none() | st.just(...) | st.text(max_size=16))
    if channel is not ...:
        wire["channel"] = channel
    expected = {
        "event_id": event_id,
        "type": etype,
        "ts": ts,
        "channel": "unknown" if channel in (None, ...) else channel,
    }
    return wire, expected


@st.composite
def survey_events(draw: st.DrawFn) -> tuple[dict[str, Any], SurveyEvent]:
    etype = draw(st.sampled_from(sorted(SURVEY_TYPES)))
    wire, expected = draw(common(etype))
    for name in ("survey_id", "response_id", "customer_id"):
        wire[name] = expected[name] = draw(ids)
    expected["question"] = expected["score"] = None
    if etype == "answer":
        question = draw(st.sampled_from(sorted(SCORE_RANGES)))
        low, high = SCORE_RANGES[question]
        score = draw(st.integers(min_value=low, max_value=high))
        wire["question"] = expected["question"] = question
        wire["score"] = draw(st.sampled_from([score, float(score)]))
        expected["score"] = score
    return wire, SurveyEvent(**expected)


@st.composite
def cart_events(draw: st.DrawFn) -> tuple[dict[str, Any], CartEvent]:
    wire, expected = draw(common(draw(st.sampled_from(sorted(CART_TYPES)))))
    wire["cart_id"] = expected["cart_id"] = draw(ids)
    customer_id = draw(st.none() | st.just(...) | ids)
    if customer_id is not ...:
        wire["customer_id"] = customer_id
    expected["customer_id"] = None if customer_id is ... else customer_id
    value = draw(
        st.floats(min_value=0.0, allow_infinity=False)
        | st.integers(min_value=0, max_value=2**64 - 1)
    )
    wire["cart_value"] = value
    expected["cart_value"] = float(value)
    return wire, CartEvent(**expected)


@st.composite
def ticket_events(draw: st.DrawFn) -> tuple[dict[str, Any], TicketEvent]:
    etype = draw(st.sampled_from(sorted(TICKET_TYPES)))
    wire, expected = draw(common(etype))
    wire["ticket_id"] = expected["ticket_id"] = draw(ids)
    expected.update(priority="normal", tags=(), public=True, via="human", into=None)
    optional = st.none() | st.just(...)
    if etype == "created":
        priority = draw(optional | st.sampled_from(sorted(PRIORITIES)))
        tags = draw(optional | st.lists(st.text(max_size=10), max_size=5))
        if priority is not ...:
            wire["priority"] = priority
        if tags is not ...:
            wire["tags"] = tags
        expected["priority"] = priority if isinstance(priority, str) else "normal"
        expected["tags"] = tuple(tags) if isinstance(tags, list) else ()
    elif etype == "agent_reply":
        public = draw(optional | st.booleans())
        via = draw(optional | st.sampled_from(sorted(VIAS)))
        if public is not ...:
            wire["public"] = public
        if via is not ...:
            wire["via"] = via
        expected["public"] = public if isinstance(public, bool) else True
        expected["via"] = via if isinstance(via, str) else "human"
    elif etype == "merged":
        wire["into"] = expected["into"] = draw(ids)
    return wire, TicketEvent(**expected)


VALID = st.one_of(
    st.tuples(st.just(parse_survey), survey_events()),
    st.tuples(st.just(parse_cart), cart_events()),
    st.tuples(st.just(parse_ticket), ticket_events()),
)


@FAST
@given(case=VALID)
def test_valid_events_round_trip(case: tuple[Any, tuple[dict[str, Any], object]]) -> None:
    parse, (wire, expected) = case
    assert check(parse, orjson.dumps(wire)) == expected


# ------------------------------------------------------------------ one wrong field

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
not_string = (
    int64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.lists(st.text(max_size=3), max_size=2)
    | st.dictionaries(st.text(max_size=3), int64, max_size=2)
)
not_integer = (
    st.booleans()
    | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
    | st.lists(int64, max_size=2)
    | st.dictionaries(st.text(max_size=3), int64, max_size=2)
)
# ts: also no string is an RFC 3339 time without a digit
not_ts = not_integer.filter(lambda x: not isinstance(x, str) or not any(c.isdigit() for c in x))
not_number = (
    st.booleans()
    | st.text(max_size=5)
    | st.lists(int64, max_size=2)
    | st.dictionaries(st.text(max_size=3), int64, max_size=2)
)
not_bool = int64 | st.text(max_size=5) | st.lists(st.booleans(), max_size=2)
not_string_list = not_number.filter(lambda x: not isinstance(x, list)) | st.lists(
    not_string, min_size=1, max_size=3
).map(lambda xs: ["ok", *xs])

REQUIRED = st.none() | st.just(...)  # a required field null or absent is a schema fault too
COMMON_WRONG = {
    "event_id": not_string | REQUIRED,
    "type": not_string | REQUIRED,
    "ts": not_ts | REQUIRED,
    "channel": not_string,
}
WRONG: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "invitation_sent": {
        "survey_id": not_string | REQUIRED,
        "response_id": not_string | REQUIRED,
        "customer_id": not_string | REQUIRED,
    },
    "answer": {
        "survey_id": not_string | REQUIRED,
        "response_id": not_string | REQUIRED,
        "customer_id": not_string | REQUIRED,
        "question": not_string | REQUIRED,
        "score": not_integer | REQUIRED,
    },
    "cart": {
        "cart_id": not_string | REQUIRED,
        "customer_id": not_string,
        "cart_value": not_number | REQUIRED,
    },
    "created": {
        "ticket_id": not_string | REQUIRED,
        "priority": not_string,
        "tags": not_string_list,
    },
    "agent_reply": {
        "ticket_id": not_string | REQUIRED,
        "public": not_bool,
        "via": not_string,
    },
    "merged": {"ticket_id": not_string | REQUIRED, "into": not_string | REQUIRED},
    "ticket": {"ticket_id": not_string | REQUIRED},
}


@FAST
@given(case=VALID, data=st.data())
def test_one_wrong_type_is_schema(
    case: tuple[Any, tuple[dict[str, Any], Any]], data: st.DataObject
) -> None:
    parse, (wire, expected) = case
    if parse is parse_cart:
        group = "cart"
    elif parse is parse_ticket:
        group = expected.type if expected.type in WRONG else "ticket"
    else:
        group = expected.type
    candidates = {**COMMON_WRONG, **WRONG[group]}
    field = data.draw(st.sampled_from(sorted(candidates)), label="field")
    bad = data.draw(candidates[field], label="value")
    mutated = {k: v for k, v in wire.items() if k != field}
    if bad is not ...:
        mutated[field] = bad
    result = check(parse, orjson.dumps(mutated))
    assert isinstance(result, Invalid), (field, bad, result)
    assert result.reason == "schema", result
    assert result.error.startswith(field), result


@FAST
@given(case=VALID, data=st.data())
def test_schema_fault_beats_out_of_range(
    case: tuple[Any, tuple[dict[str, Any], Any]], data: st.DataObject
) -> None:
    parse, (wire, _) = case
    if parse is parse_survey:
        score = data.draw(
            st.integers(min_value=6, max_value=2**63 - 1)
            | st.integers(min_value=-(2**63), max_value=0)
        )
        wire = {**wire, "type": "answer", "question": "csat", "score": score}
    elif parse is parse_cart:
        value = data.draw(
            st.floats(max_value=-1e-300, allow_infinity=False)
            | st.integers(min_value=-(2**63), max_value=-1)
        )
        wire = {**wire, "cart_value": value}
    else:
        return
    out_of_range = check(parse, orjson.dumps(wire))
    assert isinstance(out_of_range, Invalid)
    assert out_of_range.reason == "out_of_range"
    wire.pop(data.draw(st.sampled_from(["event_id", "ts", "type"])))
    result = check(parse, orjson.dumps(wire))
    assert isinstance(result, Invalid)
    assert result.reason == "schema"


# ------------------------------------------------------------------ size and encoding


@SLOW
@given(case=VALID, extra=st.integers(min_value=1, max_value=4096))
def test_over_one_mib_is_too_large(
    case: tuple[Any, tuple[dict[str, Any], Any]], extra: int
) -> None:
    parse, (wire, _) = case
    raw = orjson.dumps(wire)
    padded = raw + b" " * (MAX_RECORD_BYTES - len(raw))
    assert check(parse, padded) == case[1][1]  # exactly 1 MiB is still parsed
    result = check(parse, padded + b" " * extra)
    assert isinstance(result, Invalid)
    assert result.reason == "too_large"


@FAST
@given(
    case=VALID,
    bad=st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]),
    data=st.data(),
)
def test_invalid_utf8_is_invalid_json(
    case: tuple[Any, tuple[dict[str, Any], Any]], bad: bytes, data: st.DataObject
) -> None:
    parse, (wire, _) = case
    raw = orjson.dumps({**wire, "event_id": "e"})
    at = raw.index(b'"e"') + 1 + data.draw(st.integers(min_value=0, max_value=1))
    result = check(parse, raw[:at] + bad + raw[at:])
    assert isinstance(result, Invalid)
    assert result.reason == "invalid_json"
