"""``cxpulse kpis``: a live terminal view of the KPI topic (rich).

It reads ``cx.kpi`` from the end (no consumer group, so it never disturbs the
workers) and shows, per metric and segment, the latest value of the shortest
window, with the trend of its last values as a sparkline.
"""

from __future__ import annotations

import asyncio
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


def render(latest: dict[tuple[str, str], dict[str, Any]],
           trends: dict[tuple[str, str], deque[float]]) -> Table:  # fmt: skip
    table = Table(title="cxpulse — live KPIs (shortest window, provisional)", expand=True)
    for col in ("metric", "segment", "window", "value", "n", "trend", "watermark"):
        table.add_column(col)
    for (metric, segment), rec in sorted(latest.items()):
        value = rec["value"]
        text = "—" if value is None else f"{value:.3f}"
        table.add_row(metric, segment, rec["window"], text, str(rec["n"]),
                      sparkline(list(trends[(metric, segment)])), rec["watermark"] or "")  # fmt: skip
    return table


async def watch_kpis(bootstrap: str, settings: Settings, duration_s: float | None) -> None:
    shortest = min(settings.windows, key=lambda w: w.size_ms).name
    consumer = AIOKafkaConsumer(settings.topics.kpi, bootstrap_servers=bootstrap,
                                group_id=None, auto_offset_reset="latest")  # fmt: skip
    for _ in range(30):
        try:
            await consumer.start()
            break
        except Exception:  # noqa: BLE001 - the broker may still be starting
            await asyncio.sleep(1)
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
                        if kpi["window"] != shortest or kpi["final"]:
                            continue
                        key = (kpi["metric"], kpi["segment"])
                        latest[key] = kpi
                        if kpi["value"] is not None:
                            trends.setdefault(key, deque(maxlen=30)).append(kpi["value"])
                        trends.setdefault(key, deque(maxlen=30))
                live.update(render(latest, trends))
    finally:
        await consumer.stop()
