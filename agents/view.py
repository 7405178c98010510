"""``cxpulse kpis``: a live terminal view of the KPI topic (rich).

It reads ``cx.kpi`` from the end (no consumer group, so it never disturbs the
workers) and shows, per metric and segment, the latest value of the shortest
window, with the trend of its last values as a sparkline.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from streams.settings import Settings

_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(_SPARK[int((v - lo) / span * (len(_SPARK) - 1))] for v in values)


def render(
    latest: dict[tuple[str, str], dict[str, Any]], trends: dict[tuple[str, str], deque[float]]
) -> Table:
    table = Table(title="cxpulse — live KPIs (shortest window with data, provisional)", expand=True)
    for col in ("metric", "segment", "window", "value", "n", "trend", "watermark"):
        table.add_column(col)
    for (metric, segment), rec in sorted(latest.items()):
        value = rec["value"]
        text = "—" if value is None else f"{value:.3f}"
        trend = sparkline(list(trends[(metric, segment)]))
        table.add_row(
            metric, segment, rec["window"], text, str(rec["n"]), trend, rec["watermark"] or ""
        )
    return table


async def watch_kpis(bootstrap: str, settings: Settings, duration_s: float | None) -> None:
    from streams.broker import ensure_topics, wait_for_kafka

    order = {w.name: i for i, w in enumerate(sorted(settings.windows))}
    await wait_for_kafka(bootstrap)
    # the topic must exist before subscribing, or metadata would only refresh in minutes
    await ensure_topics(bootstrap, {settings.topics.kpi: settings.topics.partitions})
    consumer = AIOKafkaConsumer(
        settings.topics.kpi, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="latest"
    )
    await consumer.start()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    trends: dict[tuple[str, str], deque[float]] = {}
    started = time.monotonic()
    try:
        with Live(render(latest, trends), console=Console(), refresh_per_second=2) as live:
            while duration_s is None or time.monotonic() - started < duration_s:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for rec in records:
                        kpi = orjson.loads(rec.value)
                        if kpi["final"] or kpi["window"] not in order:
                            continue
                        key = (kpi["metric"], kpi["segment"])
                        held = latest.get(key)
                        # the shortest window that has data; a new window end replaces it
                        if held is not None and order[kpi["window"]] > order[held["window"]]:
                            if held["window_end"] >= kpi["window_end"] or held["n"]:
                                continue
                        latest[key] = kpi
                        if kpi["value"] is not None:
                            trends.setdefault(key, deque(maxlen=30)).append(kpi["value"])
                        trends.setdefault(key, deque(maxlen=30))
                live.update(render(latest, trends))
    finally:
        await consumer.stop()
