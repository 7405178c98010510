"""``cxpulse config``: the effective settings written back as the TOML of SPEC §5.

The output is a config file: loading it with no environment gives the same
:class:`~cxpulse.streams.settings.Settings` (a test checks the round trip). Every key
is written, defaults included, so the output says what a worker will do. The SASL
password is never written: the file names where it comes from
(``sasl_password_file`` / ``sasl_password_env``), and a comment says it is set.

Sections are walked generically (a dataclass per section, ``*_ms`` fields as duration
strings), so keys added to a section appear without a change here; the shapes that
differ from their dataclass (windows, ticket SLAs and business hours, alert rules, the
emit interval and the web keys) are written explicitly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from cxpulse.streams.durations import format_duration_ms
from cxpulse.streams.settings import (
    WEEKDAYS,
    AlertRule,
    BrokerSettings,
    BusinessHours,
    Secret,
    Settings,
    TicketSettings,
)

__all__ = ["settings_to_toml"]

#: Settings fields written by their own code below, not by the generic section walk.
_SPECIAL = frozenset({"windows", "tickets", "alerts", "emit_interval_ms", "web_port", "web_host"})


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, Iterable):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"no TOML spelling for {v!r}")


def _section(name: str, items: Iterable[tuple[str, Any]]) -> list[str]:
    lines = [f"[{name}]"]
    for key, value in items:
        if isinstance(value, Secret):
            lines.append(f"# {key} = *** (never written)")
        elif value is None and " " in key:
            lines.append(f"# {key}")
        elif value is None:
            lines.append(f"# {key} is not set")
        else:
            lines.append(f"{key} = {_value(value)}")
    return [*lines, ""]


def _fields(obj: Any) -> list[tuple[str, Any]]:
    """A section dataclass as TOML keys: ``*_ms`` fields as durations, tuples as lists."""
    out: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f.name
        if key.endswith("_ms") and isinstance(value, int):
            key, value = key.removesuffix("_ms"), format_duration_ms(value)
        out.append((key, value))
    return out


def _broker_fields(broker: BrokerSettings) -> list[tuple[str, Any]]:
    """``[broker]`` keys: TLS keys only with TLS, SASL keys only with SASL (else refused)."""
    out = []
    for key, value in _fields(broker):
        if key.startswith("ssl_") and not broker.uses_tls:
            continue
        if key.startswith("sasl_") and not broker.uses_sasl:
            continue
        if key == "sasl_password" and value is not None:
            where = broker.sasl_password_file or f"${broker.sasl_password_env}"
            out.append((f"sasl_password is read from {where}", None))
            continue
        out.append((key, value))
    return out


def _hours(hours: BusinessHours) -> dict[str, str]:
    days: dict[str, list[str]] = {}
    for weekday, start, end in hours.hours:
        span = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
        days.setdefault(WEEKDAYS[weekday], []).append(span)
    return {day: ", ".join(spans) for day, spans in days.items()}


def _tickets(tickets: TicketSettings) -> list[str]:
    lines = _section(
        "tickets",
        [(k, v) for k, v in _fields(tickets) if k not in ("sla", "business_hours", "sla_ms")],
    )
    lines += _section(
        "tickets.sla", [(p, format_duration_ms(ms)) for p, ms in tickets.sla_ms.items()]
    )
    if tickets.business_hours is not None:
        bh = tickets.business_hours
        lines += _section(
            "tickets.business_hours",
            [("timezone", bh.timezone), ("hours", _hours(bh)), ("holidays", bh.holidays)],
        )
    return lines


def _rule(rule: AlertRule) -> list[str]:
    threshold: Any = f"{rule.threshold * 100:g}%" if rule.relative else rule.threshold
    items = [
        ("name", rule.name),
        ("metric", rule.metric),
        ("window", rule.window.name),
        ("baseline", rule.baseline.name),
        ("direction", rule.direction),
        ("threshold", threshold),
        ("min_n", rule.min_n),
        ("z", rule.z),
        ("stat", rule.stat),
    ]
    lines = _section("alerts.rules", items)
    lines[0] = "[[alerts.rules]]"
    return lines


def settings_to_toml(settings: Settings) -> str:
    """The effective settings as a TOML config file (no secret in it)."""
    lines = ["# cxpulse: the effective configuration (file, environment and defaults)", ""]
    for f in dataclasses.fields(settings):
        if f.name in _SPECIAL:
            continue
        value = getattr(settings, f.name)
        if isinstance(value, BrokerSettings):
            lines += _section(f.name, _broker_fields(value))
        elif dataclasses.is_dataclass(value):
            lines += _section(f.name, _fields(value))
    lines += _section("windows", [("list", [w.name for w in settings.windows])])
    lines += _tickets(settings.tickets)
    lines += _section("emit", [("interval", format_duration_ms(settings.emit_interval_ms))])
    lines += _section("web", [("host", settings.web_host), ("port", settings.web_port)])
    if not settings.alerts:
        lines += ["[alerts]", "rules = []", ""]
    for rule in settings.alerts:
        lines += _rule(rule)
    return "\n".join(lines)
