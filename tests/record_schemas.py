"""The record contracts of ``schemas/json``, loaded for the tests (unit and integration)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "json"

#: topic name (as in the SPEC's defaults) -> its JSON Schema document
SCHEMAS: dict[str, dict[str, Any]] = {
    path.name.removesuffix(".schema.json"): json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(SCHEMA_DIR.glob("*.schema.json"))
}
#: input family (the decoders' name) -> its topic's schema name
TOPIC_OF = {
    "survey": "cx.survey.events",
    "cart": "cx.cart.events",
    "ticket": "cx.ticket.events",
    "customer": "cx.customer.events",
}


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator of topic ``name``'s schema that also checks ``format`` (date-time)."""
    return Draft202012Validator(SCHEMAS[name], format_checker=FormatChecker())


def assert_valid(name: str, records: list[Any]) -> None:
    """Every record validates against ``name``'s schema (all errors of the first one shown)."""
    check = validator(name)
    for record in records:
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(record)
        ]
        assert not errors, (name, record, errors)
