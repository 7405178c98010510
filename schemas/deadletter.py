"""Dead-letter records for ``cx.deadletter`` (SPEC §4.5).

A dead letter is one JSON object (JSON Schema: ``schemas/json/cx.deadletter.schema.json``)::

    {"schema_version": 1, "topic": "cx.survey.events", "partition": 3, "offset": 1234,
     "key": "c-42", "value": "{\\"type\\": ...}",
     "reason": "schema", "error": "score: expected an integer, got 7.5",
     "at": "2026-11-23T10:15:00.123Z"}

* ``key`` and ``value`` are the original record bytes as text when **both** are valid
  UTF-8 (a ``None`` key or value is ``null``); there is then no ``encoding`` field.
* When **either** is not valid UTF-8, **both** non-null fields are base64 (standard
  alphabet, with padding) and the record carries ``"encoding": "base64"``. A consumer
  therefore needs one flag: ``bytes = b64decode(f) if encoding == "base64" else
  f.encode()`` recovers the original bytes exactly, for key and value alike.
* The value is always copied whole, a ``too_large`` one (over 1 MiB) included: the
  dead-letter topic loses nothing. The size is in that record's ``error`` (as produced
  by :mod:`cxpulse.schemas.events`). The topic's ``max.message.bytes`` and the producer's
  ``max_request_size`` must therefore allow the largest record producers can write,
  plus about a third for base64.
* ``at`` is when the record was dead-lettered (wall clock), RFC 3339 UTC with
  milliseconds; ``reason`` is one of ``cxpulse.schemas.events.REASONS``.
* ``schema_version`` (:data:`SCHEMA_VERSION`) changes only when a field changes meaning
  or goes; a new field does not change it.

The Kafka record of a dead letter keeps the source record's **key** (so a consumer of
``cx.deadletter`` sees one entity's bad records in their order, on one partition),
**timestamp** and **headers** (:class:`DeadLetter`, :func:`dead_letter`).
"""

from __future__ import annotations

from base64 import b64encode
from dataclasses import dataclass
from typing import Any

from cxpulse.schemas.encoding import dumps_kept
from cxpulse.schemas.input import Headers, InputRecord
from cxpulse.schemas.timestamps import format_ts

__all__ = ["SCHEMA_VERSION", "DeadLetter", "dead_letter", "dead_letter_record"]

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as it is produced: the JSON value, and the Kafka key, timestamp
    and headers of the source record, which the dead-letter record keeps."""

    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    headers: Headers


def dead_letter(
    rec: InputRecord, *, topic: str, partition: int, reason: str, error: str, at_ms: int
) -> DeadLetter:
    """The dead letter of one source record (``topic``/``partition``: where it was read)."""
    value = dead_letter_record(
        topic=topic,
        partition=partition,
        offset=rec.offset,
        key=rec.key,
        value=rec.value,
        reason=reason,
        error=error,
        at_ms=at_ms,
    )
    ts = rec.timestamp  # -1: a record written without a timestamp (message format v0)
    return DeadLetter(
        rec.key, value, ts if ts is not None and ts >= 0 else None, tuple(rec.headers or ())
    )


def dead_letter_record(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
    at_ms: int,
) -> bytes:
    """Serialize one dead letter (see the module docstring for the encoding rule)."""
    record: dict[str, Any]
    try:
        key_text = None if key is None else bytes(key).decode("utf-8")
        value_text = None if value is None else bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        record = {
            "schema_version": SCHEMA_VERSION,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": None if key is None else b64encode(key).decode("ascii"),
            "value": None if value is None else b64encode(value).decode("ascii"),
            "encoding": "base64",
            "reason": reason,
            "error": error,
            "at": format_ts(at_ms),
        }
    else:
        record = {
            "schema_version": SCHEMA_VERSION,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key_text,
            "value": value_text,
            "reason": reason,
            "error": error,
            "at": format_ts(at_ms),
        }
    return dumps_kept(record)
