"""KPI records of the ``cx.kpi`` topic (SPEC §4.1), built from merged window values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cxpulse.schemas.encoding import dumps_kept
from cxpulse.schemas.timestamps import format_ts
from cxpulse.streams.merge import WindowKpi

SCHEMA_VERSION = 1


def record_key(item: WindowKpi) -> str:
    """``"{metric}|{window}|{segment}"``: the Kafka key, and the identity of a gauge series."""
    return f"{item.kpi.metric}|{item.window.name}|{item.segment}"


def kpi_record(
    item: WindowKpi, *, final: bool, watermark_ms: int | None, now_ms: int
) -> dict[str, Any]:
    """The record as the SPEC shows it; numbers are not rounded."""
    return {
        "schema_version": SCHEMA_VERSION,
        "metric": item.kpi.metric,
        "window": item.window.name,
        "segment": item.segment,
        "window_start": format_ts(item.end_ms - item.window.size_ms),
        "window_end": format_ts(item.end_ms),
        "value": item.kpi.value,
        "n": item.kpi.n,
        "stats": item.kpi.stats,
        "final": final,
        "watermark": None if watermark_ms is None else format_ts(watermark_ms),
        "emitted_at": format_ts(now_ms),
    }


def final_records(
    items: Iterable[WindowKpi], watermarks: Mapping[str, int | None], now_ms: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(record_key(item), kpi_record(item, final=True, ...))`` of each item, in order,
    the watermark being ``watermarks[item.family]``.

    The merge stage makes one per closed window, metric and segment (~0.12 per event
    of the mixed workload at 28 per second of event time): the strings the records of
    one call share (the emission time, each family's watermark) are formatted once,
    and the record is built without a call per item.
    """
    emitted = format_ts(now_ms)
    marks = {family: None if wm is None else format_ts(wm) for family, wm in watermarks.items()}
    for item in items:
        kpi, window, segment, end = item.kpi, item.window, item.segment, item.end_ms
        name = window.name
        yield (
            f"{kpi.metric}|{name}|{segment}",
            {
                "schema_version": SCHEMA_VERSION,
                "metric": kpi.metric,
                "window": name,
                "segment": segment,
                "window_start": format_ts(end - window.size_ms),
                "window_end": format_ts(end),
                "value": kpi.value,
                "n": kpi.n,
                "stats": kpi.stats,
                "final": True,
                "watermark": marks[item.family],
                "emitted_at": emitted,
            },
        )


def encode(record: dict[str, Any]) -> bytes:
    """A record's value: kept until its batch is produced (:mod:`cxpulse.schemas.encoding`)."""
    return dumps_kept(record)
