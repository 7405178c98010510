"""The record contracts (``schemas/json``) agree with the decoders and the record builders.

Input topics: every record a decoder accepts validates against its topic's schema, and
every record it refuses for ``schema`` or ``out_of_range`` fails it, except the rules
JSON Schema cannot express (listed in :func:`expressible` and docs/records.md). The
corpora are the decoder tests' own: the seed records of ``test_fast_decoders`` with
each field removed or set to every edge value, and its random mutations. Output
topics: the records the builders write validate (a real worker's records are checked
in the integration tests: tests/integration/test_alerts_pipeline.py and
test_hostile_input.py).
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from cxpulse.schemas import events
from cxpulse.schemas.alerts import alert_record
from cxpulse.schemas.deadletter import dead_letter_record
from cxpulse.schemas.events import (
    CART_TYPES,
    PARSERS,
    PRIORITIES,
    REASONS,
    SCORE_RANGES,
    SURVEY_TYPES,
    TICKET_TYPES,
    VIAS,
    Invalid,
)
from cxpulse.schemas.timestamps import parse_ts
from tests.record_schemas import SCHEMAS, TOPIC_OF, validator
from tests.unit.test_fast_decoders import EDGE_VALUES, FIELDS, VALID, records

TS = 1_795_050_000_000


def expressible(obj: Any) -> bool:
    """False for a record whose verdict rests on a rule JSON Schema cannot state.

    The one such rule on a parsed object: a ``ts`` string that has the RFC 3339 shape
    but is no instant in years 0001-9999 (``2026-02-30``, or a year pushed out of range
    by its offset). Size (1 MiB) and JSON/UTF-8 faults come before any schema: such
    bytes do not parse, so they never reach a validator.
    """
    ts = obj.get("ts") if isinstance(obj, dict) else None
    pattern = SCHEMAS["cx.survey.events"]["$defs"]["ts"]["anyOf"][1]["pattern"]
    return not (isinstance(ts, str) and re.search(pattern, ts) and parse_ts(ts) is None)


def agree(family: str, raw: bytes) -> None:
    """The decoder's verdict and the schema's are the same for ``raw``."""
    result = PARSERS[family](raw)
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        assert isinstance(result, Invalid) and result.reason == "invalid_json", result
        return
    valid = validator(TOPIC_OF[family]).is_valid(obj)
    if not isinstance(result, Invalid):
        errors = [e.message for e in validator(TOPIC_OF[family]).iter_errors(obj)]
        assert valid, (raw, result, errors)
    elif expressible(obj):
        assert not valid, (raw, result)


def test_every_schema_is_valid_draft_2020_12() -> None:
    assert set(SCHEMAS) == {
        "cx.survey.events",
        "cx.cart.events",
        "cx.ticket.events",
        "cx.customer.events",
        "cx.kpi",
        "cx.alerts",
        "cx.deadletter",
    }
    for name, schema in SCHEMAS.items():
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", name
        assert schema["$id"] == f"urn:cxpulse:schema:{name}", name


def test_enumerations_are_the_decoders() -> None:
    def enum(topic: str) -> set[str]:
        return set(SCHEMAS[topic]["properties"]["type"]["enum"])

    assert enum("cx.survey.events") == SURVEY_TYPES | {"heartbeat"}
    assert enum("cx.cart.events") == CART_TYPES | {"heartbeat"}
    assert enum("cx.ticket.events") == TICKET_TYPES | {"heartbeat"}
    assert SCHEMAS["cx.deadletter"]["properties"]["reason"]["enum"] == list(REASONS)
    answer = SCHEMAS["cx.survey.events"]["else"]["allOf"][0]["then"]
    ranges = {
        rule["if"]["properties"]["question"]["const"]: (
            rule["then"]["properties"]["score"]["minimum"],
            rule["then"]["properties"]["score"]["maximum"],
        )
        for rule in answer["allOf"]
    }
    assert ranges == dict(SCORE_RANGES)
    ticket = {r["if"]["properties"]["type"]["const"]: r["then"] for r in _allof("ticket")}
    assert set(ticket["created"]["properties"]["priority"]["enum"]) == PRIORITIES | {None}
    assert set(ticket["agent_reply"]["properties"]["via"]["enum"]) == VIAS | {None}


def _allof(family: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = SCHEMAS[TOPIC_OF[family]]["else"]["allOf"]
    return rules


def test_every_family_with_a_decoder_has_a_schema() -> None:
    assert set(PARSERS) <= set(TOPIC_OF)


@pytest.mark.parametrize("family", sorted(VALID))
def test_every_single_field_change_of_every_seed_gets_the_decoders_verdict(family: str) -> None:
    """Exhaustive: each seed with one field removed or set to each edge value."""
    checked = accepted = 0
    for seed in VALID[family]:
        agree(family, seed)
        obj = orjson.loads(seed)
        for name in [*FIELDS[family], "extra"]:
            agree(family, orjson.dumps({k: v for k, v in obj.items() if k != name}))
            for value in EDGE_VALUES:
                raw = orjson.dumps({**obj, name: value})
                agree(family, raw)
                checked += 1
                accepted += not isinstance(PARSERS[family](raw), Invalid)
    assert checked > 1_000 and accepted > 100, (checked, accepted)


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), family=st.sampled_from(sorted(VALID)))
def test_mutated_records_get_the_decoders_verdict(data: st.DataObject, family: str) -> None:
    agree(family, data.draw(records(family)))


@pytest.mark.parametrize(
    ("ts", "valid"),
    [
        (TS, True),
        (float(TS), True),
        ("2026-11-23T10:15:00.123Z", True),
        ("2026-11-23t10:15:00z", True),
        ("2026-11-23 10:15:00+01:00", True),
        ("2026-12-31T23:59:60Z", True),  # a leap second
        ("2026-11-23T10:15:00", False),  # no offset: the instant is unknown
        ("2026-11-23T10:15:00Z\n", False),  # Python's `$` would let this through
        ("0000-01-01T00:00:00Z", False),
        ("2026-13-01T00:00:00Z", False),
        ("2026-11-23T24:00:00Z", False),
        (1.5, False),
        (True, False),
        (None, False),
    ],
)
def test_ts_forms(ts: Any, valid: bool) -> None:
    record = {"type": "heartbeat", "ts": ts}
    assert validator("cx.cart.events").is_valid(record) is valid
    assert (not isinstance(events.parse_cart(orjson.dumps(record)), Invalid)) is valid


# Written from SPEC §1.5 (only lead_id, referred_by and plan are marked optional there, so
# channel is required where it is listed); the decoder test below holds the customer
# decoder to the same verdicts.
CUSTOMER_VALID: list[dict[str, Any]] = [
    {"type": "lead_created", "lead_id": "l-1", "channel": "web"},
    {"type": "signed_up", "customer_id": "c-1", "channel": "ads"},
    {"type": "signed_up", "customer_id": "c-1", "channel": "a", "lead_id": "l", "referred_by": "c"},
    {"type": "signed_up", "customer_id": "c", "channel": "a", "lead_id": None, "referred_by": None},
    {"type": "subscription_started", "customer_id": "c-1", "mrr": 49.5, "plan": "pro"},
    {"type": "subscription_changed", "customer_id": "c-1", "mrr": 0},
    {"type": "subscription_cancelled", "customer_id": "c-1"},
    {"type": "acquisition_spend", "amount": 1200, "channel": "ads"},
    {"type": "heartbeat", "ts": TS, "event_id": 3},
]
CUSTOMER_INVALID: list[dict[str, Any]] = [
    {"type": "lead_created", "channel": "web"},
    {"type": "lead_created", "lead_id": ""},
    {"type": "signed_up", "lead_id": "l-1"},
    {"type": "signed_up", "customer_id": "c-1", "referred_by": ""},
    {"type": "subscription_started", "customer_id": "c-1"},
    {"type": "subscription_changed", "customer_id": "c-1", "mrr": -1},
    {"type": "subscription_changed", "customer_id": "c-1", "mrr": "10"},
    {"type": "subscription_started", "customer_id": "c-1", "mrr": 10, "plan": 3},
    {"type": "subscription_cancelled"},
    {"type": "acquisition_spend", "amount": -5, "channel": "ads"},
    {"type": "acquisition_spend", "channel": "ads"},
    {"type": "refund", "customer_id": "c-1"},
    {"type": "signed_up", "customer_id": "c-1", "channel": 5},
    {"type": "signed_up", "customer_id": "c-1"},
    {"type": "lead_created", "lead_id": "l-1", "channel": None},
    {"type": "acquisition_spend", "amount": 10},
]


def _customer(record: dict[str, Any]) -> dict[str, Any]:
    if record["type"] == "heartbeat":
        return record
    return {"event_id": "e-1", "ts": TS, **record}


def test_customer_events_schema() -> None:
    check = validator("cx.customer.events")
    for record in CUSTOMER_VALID:
        assert check.is_valid(_customer(record)), record
    for record in CUSTOMER_INVALID:
        assert not check.is_valid(_customer(record)), record
    assert not check.is_valid({"type": "signed_up", "customer_id": "c", "ts": TS})  # event_id


@pytest.mark.parametrize("family", sorted(set(PARSERS) & {"customer"}) or ["customer"])
def test_the_customer_decoder_gives_the_schemas_verdicts(family: str) -> None:
    """Against the decoder once it exists; until then the schema's corpus must at least
    be a corpus: both lists non-empty and disjoint in verdict."""
    parse = PARSERS.get(family)
    for record in CUSTOMER_VALID:
        raw = orjson.dumps(_customer(record))
        assert parse is None or not isinstance(parse(raw), Invalid), record
    for record in CUSTOMER_INVALID:
        raw = orjson.dumps(_customer(record))
        assert parse is None or isinstance(parse(raw), Invalid), record
    assert CUSTOMER_VALID and CUSTOMER_INVALID


# ------------------------------------------------------------------------ output records


def test_built_dead_letters_validate() -> None:
    check = validator("cx.deadletter")
    for key, value in [(b"c-1", b"{}"), (None, None), (b"\xff", b"\x00\xfe"), (b"k", b"\xc3")]:
        record = orjson.loads(
            dead_letter_record(
                topic="cx.cart.events",
                partition=0,
                offset=5,
                key=key,
                value=value,
                reason="invalid_json",
                error="value: not valid UTF-8 JSON",
                at_ms=TS,
            )
        )
        assert check.is_valid(record), list(check.iter_errors(record))
    assert not check.is_valid({**record, "encoding": "base64", "value": "not base64!"})
    assert not check.is_valid({**record, "reason": "unknown"})


def test_built_alerts_validate() -> None:
    check = validator("cx.alerts")
    record = alert_record(
        alert="nps_drop",
        metric="nps",
        segment="channel=web",
        state="firing",
        current=12.5,
        baseline=40.0,
        delta=27.5,
        z=2.5,
        n=120,
        window="1h/1m",
        baseline_window="7d/1h",
        at="2026-11-23T11:00:00.000Z",
        emitted_at_ms=TS,
    )
    assert check.is_valid(record), list(check.iter_errors(record))
    assert record["schema_version"] == 1
    assert not check.is_valid({**record, "state": "pending"})
    assert not check.is_valid({k: v for k, v in record.items() if k != "schema_version"})
