"""Table-driven tests of the customer decoder (SPEC §1.5, §1.4)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cxpulse.schemas.events import (
    CustomerEvent,
    Heartbeat,
    Invalid,
    parse_customer,
    parse_customer_reference,
)

TS = 1_795_428_900_123
HEAD: dict[str, Any] = {"event_id": "e-1", "ts": TS}
LEAD = {**HEAD, "type": "lead_created", "lead_id": "l-1", "channel": "ads"}
SIGNUP = {**HEAD, "type": "signed_up", "customer_id": "c-1", "channel": "ads"}
START = {**HEAD, "type": "subscription_started", "customer_id": "c-1", "mrr": 49}
CHANGE = {**HEAD, "type": "subscription_changed", "customer_id": "c-1", "mrr": 99.5}
CANCEL = {**HEAD, "type": "subscription_cancelled", "customer_id": "c-1"}
SPEND = {**HEAD, "type": "acquisition_spend", "amount": 250, "channel": "ads"}
PARSERS = (parse_customer, parse_customer_reference)


def _parse(parse: Any, obj: dict[str, Any]) -> Any:
    return parse(orjson.dumps(obj))


@pytest.mark.parametrize("parse", PARSERS)
def test_every_type_decodes(parse: Any) -> None:
    assert _parse(parse, LEAD) == CustomerEvent(
        "e-1", "lead_created", TS, "ads", None, "l-1", None, None, None, None
    )
    full = {**SIGNUP, "lead_id": "l-1", "referred_by": "c-0"}
    assert _parse(parse, full) == CustomerEvent(
        "e-1", "signed_up", TS, "ads", "c-1", "l-1", "c-0", None, None, None
    )
    assert _parse(parse, {**START, "plan": "pro"}) == CustomerEvent(
        "e-1", "subscription_started", TS, "unknown", "c-1", None, None, 49.0, "pro", None
    )
    assert _parse(parse, CHANGE).mrr == 99.5
    assert _parse(parse, CANCEL) == CustomerEvent(
        "e-1", "subscription_cancelled", TS, "unknown", "c-1", None, None, None, None, None
    )
    assert _parse(parse, SPEND).amount == 250.0


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize(
    ("base", "field", "bad", "reason"),
    [
        (START, "mrr", -1, "out_of_range"),
        (CHANGE, "mrr", -0.01, "out_of_range"),
        (SPEND, "amount", -5, "out_of_range"),
        (START, "mrr", None, "schema"),
        (START, "mrr", "49", "schema"),
        (START, "mrr", True, "schema"),
        (SPEND, "amount", None, "schema"),
        (SIGNUP, "customer_id", None, "schema"),
        (SIGNUP, "customer_id", "", "schema"),
        (START, "customer_id", None, "schema"),
        (CANCEL, "customer_id", 7, "schema"),
        (LEAD, "lead_id", None, "schema"),
        (LEAD, "lead_id", "", "schema"),
        (LEAD, "channel", None, "schema"),
        (SIGNUP, "channel", None, "schema"),
        (SPEND, "channel", None, "schema"),
        (SIGNUP, "lead_id", "", "schema"),
        (SIGNUP, "referred_by", 3, "schema"),
        (START, "plan", 3, "schema"),
    ],
)
def test_faults(parse: Any, base: dict[str, Any], field: str, bad: object, reason: str) -> None:
    obj = dict(base)
    if bad is None:
        obj.pop(field, None)
    else:
        obj[field] = bad
    got = _parse(parse, obj)
    assert isinstance(got, Invalid)
    assert (got.reason, got.error.split(":")[0]) == (reason, field)
    got_null = _parse(parse, {**base, field: None}) if bad is None else got
    assert isinstance(got_null, Invalid) and got_null.reason == reason


@pytest.mark.parametrize("parse", PARSERS)
def test_schema_before_range_and_optional_fields(parse: Any) -> None:
    got = _parse(parse, {**START, "mrr": -1, "customer_id": None})
    assert isinstance(got, Invalid) and got.reason == "schema"
    # the subscription events' channel is optional; fields of other types are ignored
    ok = _parse(parse, {**CANCEL, "mrr": -3, "amount": "x", "lead_id": 4})
    assert isinstance(ok, CustomerEvent) and ok.channel == "unknown" and ok.mrr is None
    assert _parse(parse, {**SIGNUP, "lead_id": None}).lead_id is None


@pytest.mark.parametrize("parse", PARSERS)
def test_heartbeat_and_unknown_type(parse: Any) -> None:
    assert _parse(parse, {"type": "heartbeat", "ts": TS}) == Heartbeat(TS)
    got = _parse(parse, {**HEAD, "type": "subscription_paused", "customer_id": "c"})
    assert isinstance(got, Invalid) and got.reason == "schema"
