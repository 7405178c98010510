"""The compiled fast path of the decoders never changes a result (cxpulse.schemas.events).

Differential: for any input, ``parse_*`` (fast path, else the reference) returns exactly
what ``parse_*_reference`` (the hand-written rules) returns, dead-letter reason and
message included. And the fast path is really taken for plain valid records, so these
tests are not passing by always falling back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.workloads import build
from cxpulse.schemas import events, fastpath
from cxpulse.schemas.events import (
    CART_TYPES,
    CUSTOMER_TYPES,
    PRIORITIES,
    SCORE_RANGES,
    SURVEY_TYPES,
    TICKET_TYPES,
    VIAS,
    Invalid,
    parse_cart,
    parse_cart_reference,
    parse_customer,
    parse_customer_reference,
    parse_survey,
    parse_survey_reference,
    parse_ticket,
    parse_ticket_reference,
)
from cxpulse.schemas.timestamps import MAX_TS_MS, format_ts

Parser = Callable[[bytes | None], Any]
PAIRS: dict[str, tuple[Parser, Parser]] = {
    "survey": (parse_survey, parse_survey_reference),
    "cart": (parse_cart, parse_cart_reference),
    "ticket": (parse_ticket, parse_ticket_reference),
    "customer": (parse_customer, parse_customer_reference),
}
FAST: dict[str, Callable[[bytes], Any]] = {
    "survey": events._fast_survey,
    "cart": events._fast_cart,
    "ticket": events._fast_ticket,
    "customer": events._fast_customer,
}
FIELDS = {
    "survey": [
        "event_id",
        "type",
        "ts",
        "channel",
        "survey_id",
        "response_id",
        "customer_id",
        "question",
        "score",
    ],
    "cart": ["event_id", "type", "ts", "channel", "cart_id", "customer_id", "cart_value"],
    "ticket": [
        "event_id",
        "type",
        "ts",
        "channel",
        "ticket_id",
        "priority",
        "tags",
        "public",
        "via",
        "into",
    ],
    "customer": [
        "event_id",
        "type",
        "ts",
        "channel",
        "customer_id",
        "lead_id",
        "referred_by",
        "mrr",
        "plan",
        "amount",
    ],
}
TYPES = sorted(
    SURVEY_TYPES | CART_TYPES | TICKET_TYPES | CUSTOMER_TYPES | {"heartbeat", "Answer", ""}
)

# Values a field may take: the plain valid ones, and every near miss we could think of.
EDGE: list[Any] = [
    None,
    "",
    " ",
    "x",
    "x" * 128,
    "x" * 129,
    "é" * 128,
    "\u0000",
    "😀",
    0,
    -1,
    7,
    11,
    -0.0,
    7.0,
    7.5,
    1e300,
    2**63,
    True,
    False,
    [],
    ["a"],
    ["a", 1],
    {},
    {"a": 1},
    MAX_TS_MS,
    MAX_TS_MS + 1,
    format_ts(1_795_050_000_000),
    "2026-11-23T10:00:00+01:00",
    "2026-02-30T10:00:00Z",
]
edge_values = st.sampled_from(EDGE)
field_values = (
    edge_values
    | st.sampled_from(TYPES)
    | st.sampled_from(sorted(SCORE_RANGES) + sorted(PRIORITIES) + sorted(VIAS))
    | st.integers(min_value=-3, max_value=12)
    | st.integers(min_value=1_795_000_000_000, max_value=1_795_100_000_000)
    | st.floats(allow_nan=False)
    | st.lists(st.text(max_size=3), max_size=3)
    | st.text(max_size=6)
)


@st.composite
def records(draw: st.DrawFn, family: str) -> bytes:
    """A record of ``family``: a valid one, mutated field by field, sometimes byte by byte."""
    obj = orjson.loads(draw(st.sampled_from(VALID[family])))
    for name in draw(st.lists(st.sampled_from([*FIELDS[family], "extra"]), max_size=3)):
        if draw(st.booleans()):
            obj.pop(name, None)
        else:
            obj[name] = draw(field_values)
    raw = orjson.dumps(obj)
    if draw(st.integers(0, 5)) == 0:  # a literal orjson would never write
        literal = draw(
            st.sampled_from(
                [
                    b"1e400",
                    b"-0",
                    b"1E2",
                    b"7.0",
                    b"NaN",
                    b'"\\ud800"',
                    b"123456789012345678901234",
                    b"1795050000000.0",
                ]
            )
        )
        name = draw(st.sampled_from(FIELDS[family])).encode()
        raw = raw[:-1] + b',"' + name + b'":' + literal + b"}"
    if draw(st.integers(0, 5)) == 0:  # a corrupted byte
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
    return raw


TS = 1_795_050_000_000
HEAD = {"event_id": "e-1", "ts": TS}
#: one valid record of every event type and optional field, beside the workload's own
WRITTEN: dict[str, list[dict[str, Any]]] = {
    "survey": [
        {
            **HEAD,
            "type": "answer",
            "survey_id": "s",
            "response_id": "r",
            "customer_id": "c",
            "question": q,
            "score": SCORE_RANGES[q][1],
        }
        for q in sorted(SCORE_RANGES)
    ],
    "cart": [{**HEAD, "type": t, "cart_id": "k", "cart_value": 0} for t in sorted(CART_TYPES)],
    "ticket": [
        {**HEAD, "type": t, "ticket_id": "t", "channel": "web"}
        for t in sorted(TICKET_TYPES - {"merged"})
    ]
    + [
        {**HEAD, "type": "created", "ticket_id": "t", "priority": "urgent", "tags": ["a", ""]},
        {**HEAD, "type": "agent_reply", "ticket_id": "t", "public": False, "via": "bot"},
        {**HEAD, "type": "merged", "ticket_id": "t", "into": "t-2"},
    ],
    "customer": [
        {**HEAD, "type": "lead_created", "lead_id": "l", "channel": "ads"},
        {**HEAD, "type": "signed_up", "customer_id": "c", "channel": "ads"},
        {
            **HEAD,
            "type": "signed_up",
            "customer_id": "c",
            "channel": "",
            "lead_id": "l",
            "referred_by": "c-0",
        },
        {**HEAD, "type": "subscription_started", "customer_id": "c", "mrr": 49, "plan": "pro"},
        {**HEAD, "type": "subscription_changed", "customer_id": "c", "mrr": 0.5},
        {**HEAD, "type": "subscription_cancelled", "customer_id": "c", "channel": "web"},
        {**HEAD, "type": "acquisition_spend", "amount": 120.25, "channel": "ads"},
        {**HEAD, "type": "acquisition_spend", "amount": 0, "channel": "ads"},
    ],
}


def _valid_records(family: str) -> list[bytes]:
    workload = build("mixed", 4_000, 0)
    if family == "customer":
        return [orjson.dumps(obj) for obj in WRITTEN[family]]
    seen: dict[bytes, bytes] = {}
    for record in workload.backlog:
        if record.family == family:
            kind = orjson.loads(record.value)["type"].encode()
            seen.setdefault(kind, record.value)
    written = [orjson.dumps(obj) for obj in WRITTEN[family]]
    return list(seen.values()) + [raw for raw in written if FAST[family](raw) is not None]


VALID = {family: _valid_records(family) for family in PAIRS}
SETTINGS = settings(max_examples=1500, deadline=None)


def _same(family: str, raw: bytes | None) -> None:
    fast, reference = PAIRS[family]
    assert fast(raw) == reference(raw), raw


@SETTINGS
@given(raw=records("survey"))
def test_survey_fast_path_matches_the_reference(raw: bytes) -> None:
    _same("survey", raw)


@SETTINGS
@given(raw=records("cart"))
def test_cart_fast_path_matches_the_reference(raw: bytes) -> None:
    _same("cart", raw)


@SETTINGS
@given(raw=records("ticket"))
def test_ticket_fast_path_matches_the_reference(raw: bytes) -> None:
    _same("ticket", raw)


@SETTINGS
@given(raw=records("customer"))
def test_customer_fast_path_matches_the_reference(raw: bytes) -> None:
    _same("customer", raw)


@settings(max_examples=300, deadline=None)
@given(family=st.sampled_from(sorted(PAIRS)), raw=st.binary(max_size=200))
def test_arbitrary_bytes_give_the_reference_result(family: str, raw: bytes) -> None:
    _same(family, raw)


def test_null_and_oversized_records_give_the_reference_result() -> None:
    big = b'{"type":"answer","pad":"' + b"x" * (1 << 20) + b'"}'
    for family in PAIRS:
        _same(family, None)
        _same(family, big)
        assert isinstance(PAIRS[family][0](big), Invalid)


def test_the_fast_path_takes_every_valid_record_of_the_benchmark_workload() -> None:
    """Plain valid records of every event type decode without the reference decoder."""
    for family, written in WRITTEN.items():
        for obj in written:
            assert FAST[family](orjson.dumps(obj)) is not None, obj
    for family, values in VALID.items():
        for raw in values:
            event = FAST[family](raw)
            assert event is not None, raw
            assert event == PAIRS[family][1](raw)


def test_a_record_with_an_unknown_field_falls_back_and_is_still_valid() -> None:
    raw = orjson.loads(VALID["survey"][0])
    raw["comment"] = {"free": "text"}
    value = orjson.dumps(raw)
    assert events._fast_survey(value) is None
    assert not isinstance(parse_survey(value), Invalid)


EDGE_VALUES: list[Any] = [
    *EDGE,
    *TYPES,
    *sorted(SCORE_RANGES),
    *sorted(PRIORITIES),
    *sorted(VIAS),
]


def test_every_single_field_change_of_every_valid_record_gives_the_reference_result() -> None:
    """Exhaustive: each seed record with one field removed or set to each edge value."""
    checked = 0
    for family, seeds in VALID.items():
        for seed in seeds:
            obj = orjson.loads(seed)
            for name in [*FIELDS[family], "extra"]:
                removed = {k: v for k, v in obj.items() if k != name}
                _same(family, orjson.dumps(removed))
                for value in EDGE_VALUES:
                    _same(family, orjson.dumps({**obj, name: value}))
                    checked += 1
    assert checked > 5_000, checked


# ------------------------------------------------------------- runs of records
# A topic's run decoder (fastpath.Runs) decodes a run of records in one call; per record
# it must give exactly the one-record fast path's answer, whatever the neighbours: the
# hostile cases are values that are not one whole JSON text (two texts, a text cut in
# two, blanks, newlines inside).

RUNS: dict[str, fastpath.Runs[Any]] = {
    "survey": fastpath.fast_surveys,
    "cart": fastpath.fast_carts,
    "ticket": fastpath.fast_tickets,
}


def _one_by_one(values: list[bytes | None], family: str) -> list[Any]:
    one = FAST[family]
    return [None if v is None or len(v) > (1 << 20) else one(v) for v in values]


def hostile(family: str) -> list[bytes | None]:
    a, b = VALID[family][0], VALID[family][1]
    return [
        None,
        b"",
        b" ",
        b"\n",
        b"{}",
        b'{"type":"heartbeat","ts":1795050000000}',
        a + b" " + b,  # two texts in one record
        a + b"\n" + b,
        a + b,
        b" " + a,  # whitespace around a valid record
        a + b"\r\n",
        a.replace(b",", b",\n"),  # newlines between the tokens
        a[:40],  # a text cut in two, as two records
        a[40:],
        b'{"a":[{}',  # ends with } but is not closed
        b'{"b":1}]}',
    ]


@st.composite
def runs(draw: st.DrawFn) -> tuple[str, list[bytes | None]]:
    """A topic and a run of its records: valid, mutated, hostile, and cut valid ones."""
    family = draw(st.sampled_from(sorted(RUNS)))
    out: list[bytes | None] = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.integers(0, 5))
        if kind <= 1:
            out.append(draw(st.sampled_from(VALID[family])))
        elif kind == 2:
            out.append(draw(records(family)))
        elif kind == 3:
            out.append(draw(st.sampled_from(hostile(family))))
        elif kind == 4:  # a valid record cut anywhere, the two halves as neighbours
            raw = draw(st.sampled_from(VALID[family]))
            at = draw(st.integers(1, len(raw) - 1))
            out.extend([raw[:at], raw[at:]])
        else:
            out.append(draw(st.binary(max_size=40)))
    return family, out


@settings(max_examples=3000, deadline=None)
@given(run=runs())
def test_a_run_decoded_in_one_call_gives_each_record_its_own_answer(
    run: tuple[str, list[bytes | None]],
) -> None:
    family, values = run
    assert RUNS[family](values) == _one_by_one(values, family)


def test_hostile_neighbours_never_shift_an_event_to_another_record() -> None:
    """Exhaustive over pairs: a hostile record before and after valid ones."""
    for family, decode in RUNS.items():
        valid = VALID[family][:3]
        for a in hostile(family):
            for b in hostile(family):
                values = [*valid, a, valid[0], b, *valid]
                assert decode(values) == _one_by_one(values, family), (family, a, b)


def test_the_families_decode_runs_with_their_topics_decoder() -> None:
    from cxpulse.streams.families.cart.family import CartFamily
    from cxpulse.streams.families.survey.family import SurveyFamily
    from cxpulse.streams.families.ticket.family import TicketFamily

    families = {"survey": SurveyFamily, "cart": CartFamily, "ticket": TicketFamily}
    assert {name: f.decode_many for name, f in families.items()} == RUNS


def test_a_run_of_valid_records_is_decoded_whole_and_a_heartbeat_costs_one_redecode(
    monkeypatch: Any,
) -> None:
    """Plain valid runs take the one-call path (not a record-by-record fallback that would
    pass the tests above by construction); a record that fails to decode in the middle
    costs a decode of each side, not one call per record."""
    for family, decode in RUNS.items():
        calls: list[int] = []
        lines = decode.lines

        def counting(blob: bytes, lines: Any = lines, calls: list[int] = calls) -> Any:
            calls.append(blob.count(b"\n") + 1)
            return lines(blob)

        monkeypatch.setattr(decode, "lines", counting)
        single = decode.one
        singles: list[bytes] = []
        monkeypatch.setattr(decode, "one", lambda v, s=single, o=singles: o.append(v) or s(v))
        run = [VALID[family][i % len(VALID[family])] for i in range(200)]
        assert all(ev is not None for ev in decode(run)), family
        assert (calls, singles) == ([200], []), family
        calls.clear()
        beat = b'{"type":"heartbeat","ts":1795050000000}'
        decoded = decode([*run[:120], beat, *run[120:]])
        assert decoded[120] is None and sum(ev is None for ev in decoded) == 1
        if family in ("survey", "cart"):  # its event struct refuses a heartbeat: decoded
            # again around it
            assert calls == [201, 120, 80] and singles == [beat], family
        else:  # a wire struct takes it; its check refuses it (the reference decides)
            assert calls == [201] and singles == [], family
        calls.clear()
        singles.clear()
        field = "score" if family == "survey" else "event_id"
        bad = orjson.dumps({**orjson.loads(VALID[family][0]), field: 7.5})  # fails at $[50].<field>
        decoded = decode([*run[:50], bad, *run[50:]])
        assert [i for i, ev in enumerate(decoded) if ev is None] == [50], family
        assert calls == [201, 50, 150] and singles == [bad], family


@settings(max_examples=500, deadline=None)
@given(
    values=st.lists(
        st.none()
        | st.binary(max_size=6)
        | st.binary(max_size=6).map(lambda b: b"{" + b + b"}")
        | st.sampled_from(
            [b"{", b"}", b"{}", b"}{", b"{" + b" " * fastpath.MAX_RECORD_BYTES + b"}"]
        ),
        max_size=8,
    )
)
def test_the_boundary_test_of_a_run_is_each_values_own(values: list[bytes | None]) -> None:
    """Gathered first and last bytes say what per-value checks say: no ``None``, every
    value within the size bound, starting with ``{`` and ending with ``}``."""
    each = all(
        v is not None and len(v) <= fastpath.MAX_RECORD_BYTES and v[:1] == b"{" and v[-1:] == b"}"
        for v in values
    )
    assert fastpath._bounded(values) == each
