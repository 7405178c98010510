"""Dead-letter records (SPEC §4.5): fields, both encodings, nothing lost."""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import orjson
import pytest

from cxpulse.schemas.deadletter import dead_letter, dead_letter_record
from cxpulse.schemas.events import MAX_RECORD_BYTES, Invalid, parse_survey
from cxpulse.schemas.input import RawRecord

AT_MS = 1_795_428_900_123
AT_TEXT = "2026-11-23T10:15:00.123Z"


def build(key: bytes | None, value: bytes | None, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "topic": "cx.survey.events",
        "partition": 3,
        "offset": 1234,
        "key": key,
        "value": value,
        "reason": "schema",
        "error": "score: expected an integer, got 7.5",
        "at_ms": AT_MS,
    }
    args.update(overrides)
    record = orjson.loads(dead_letter_record(**args))
    assert isinstance(record, dict)
    return record


def original(record: dict[str, Any], field: str) -> bytes | None:
    """What a consumer does: one flag decides how both key and value decode."""
    text = record[field]
    if text is None:
        return None
    assert isinstance(text, str)
    return b64decode(text, validate=True) if record.get("encoding") == "base64" else text.encode()


def test_fields_utf8() -> None:
    record = build(b"c-42", b'{"type": "answer", "score": 7.5}')
    assert record == {
        "schema_version": 1,
        "topic": "cx.survey.events",
        "partition": 3,
        "offset": 1234,
        "key": "c-42",
        "value": '{"type": "answer", "score": 7.5}',
        "reason": "schema",
        "error": "score: expected an integer, got 7.5",
        "at": AT_TEXT,
    }


@pytest.mark.parametrize(
    ("key", "value", "base64"),
    [
        (b"c-1", b"{}", False),
        (None, b"not json", False),
        (b"k", None, False),
        (None, None, False),
        (b"", b"", False),
        ("клиент-☎".encode(), '{"emoji": "😀"}'.encode(), False),
        (b"c-1", b"\xff\xfe{", True),  # value not UTF-8
        (b"\xc3\x28", b"{}", True),  # key not UTF-8: both go base64
        (None, b"\xed\xa0\x80", True),  # UTF-8-encoded surrogate is not UTF-8
        (b"\x80", None, True),
        (b"\x00\x01", b"\x00", False),  # control characters are valid UTF-8
    ],
)
def test_round_trip(key: bytes | None, value: bytes | None, base64: bool) -> None:
    record = build(key, value)
    assert (record.get("encoding") == "base64") is base64
    if not base64:
        assert "encoding" not in record
    assert original(record, "key") == key
    assert original(record, "value") == value


def test_too_large_value_is_kept_whole() -> None:
    value = b'{"type": "answer", "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'
    invalid = parse_survey(value)
    assert isinstance(invalid, Invalid)
    assert invalid.reason == "too_large"
    assert str(len(value)) in invalid.error
    record = build(b"c-1", value, reason="too_large", error=invalid.error)
    assert record["reason"] == "too_large"
    assert str(len(value)) in record["error"]
    assert original(record, "value") == value


def test_too_large_binary_value_is_kept_whole() -> None:
    value = bytes(range(256)) * (MAX_RECORD_BYTES // 256 + 1)
    record = build(b"c-1", value, reason="too_large", error=f"value: {len(value)} bytes")
    assert record["encoding"] == "base64"
    assert original(record, "value") == value
    assert original(record, "key") == b"c-1"


@pytest.mark.parametrize("reason", ["invalid_json", "schema", "out_of_range", "too_large", "late"])
def test_reason_and_at(reason: str) -> None:
    record = build(
        b"k", b"v", reason=reason, at_ms=0, partition=0, offset=0, topic="cx.cart.events"
    )
    assert (record["reason"], record["at"]) == (reason, "1970-01-01T00:00:00.000Z")
    assert (record["topic"], record["partition"], record["offset"]) == ("cx.cart.events", 0, 0)


def test_output_is_compact_utf8_json() -> None:
    raw = dead_letter_record(
        topic="t",
        partition=1,
        offset=2,
        key=None,
        value="ü".encode(),
        reason="schema",
        error="x",
        at_ms=AT_MS,
    )
    assert isinstance(raw, bytes)
    raw.decode("utf-8")
    assert b"\n" not in raw


def test_dead_letter_keeps_the_source_records_kafka_metadata() -> None:
    headers = (("trace", b"1"), ("trace", b"\xff"))
    rec = RawRecord(9, b"\xc3(", b"{}", 1_795_428_900_000, headers)
    letter = dead_letter(rec, topic="t", partition=2, reason="schema", error="x", at_ms=AT_MS)
    assert (letter.key, letter.timestamp_ms, letter.headers) == (
        b"\xc3(",
        1_795_428_900_000,
        headers,
    )
    body = orjson.loads(letter.value)
    assert body["encoding"] == "base64" and original(body, "key") == b"\xc3("
    assert (body["schema_version"], body["partition"], body["offset"]) == (1, 2, 9)
    # a record written without a timestamp (message format v0 reads as -1): the producer's clock
    assert (
        dead_letter(
            RawRecord(1, None, b"", -1), topic="t", partition=0, reason="schema", error="x", at_ms=0
        ).timestamp_ms
        is None
    )
