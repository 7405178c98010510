"""``cxpulse kpis``: a live terminal view of the KPI and alert topics (rich).

It reads ``cx.kpi`` and ``cx.alerts`` from the end (no consumer group, so it
never disturbs the workers) and shows what a wall display would: big tiles for
the headline KPIs of the whole business (red while one of their alerts fires),
the alerts firing now and the latest transitions, and per metric and segment
the latest value of the shortest window with the trend of its last values as a
sparkline.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cxpulse.streams.settings import Settings

_SPARK = "▁▂▃▄▅▆▇█"

#: The headline tiles: (title, metric, where the number is, format).
TILES = (
    ("NPS", "nps", "value", "{:+.1f}"),
    ("CSAT", "csat", "value", "{:.0%}"),
    ("CES", "ces", "value", "{:.2f}"),
    ("Cart abandonment", "cart_abandonment", "value", "{:.0%}"),
    ("First response p90", "ticket_first_response_seconds", "p90", "{:.0f} s"),
    ("SLA breached", "ticket_sla_breach", "value", "{:.0%}"),
)
#: The customer-value tiles (SPEC §3.4), a second row.
CUSTOMER_TILES = (
    ("MRR", "mrr", "value", "{:,.0f}"),
    ("Active customers", "mrr", "active", "{:,.0f}"),
    ("Customer churn", "customer_churn", "value", "{:.1%}"),
    ("CAC", "cac", "value", "{:,.0f}"),
    ("CLV", "clv", "value", "{:,.0f}"),
    ("LTV:CAC", "ltv_cac", "value", "{:.1f}"),
)


def sparkline(values: list[float]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(_SPARK[int((v - lo) / span * (len(_SPARK) - 1))] for v in values)


@dataclass
class ViewState:
    """What the view has seen: latest provisional records, their trends, alert transitions."""

    latest: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    trends: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    firing: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    transitions: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=6))

    def on_alert(self, alert: dict[str, Any]) -> None:
        key = (alert["alert"], alert["segment"])
        if alert["state"] == "firing":
            self.firing[key] = alert
        else:
            self.firing.pop(key, None)
        self.transitions.appendleft(alert)

    def on_kpi(self, kpi: dict[str, Any], order: dict[str, int]) -> None:
        if kpi["final"] or kpi["window"] not in order:
            return
        key = (kpi["metric"], kpi["segment"])
        held = self.latest.get(key)
        # the shortest window that has data; a new window end replaces it
        if held is not None and order[kpi["window"]] > order[held["window"]]:
            if held["window_end"] >= kpi["window_end"] or held["n"]:
                return
        self.latest[key] = kpi
        trend = self.trends.setdefault(key, deque(maxlen=30))
        number = _number(kpi, "p90" if kpi["metric"].endswith("_seconds") else "value")
        if number is not None and (held is None or held["window_end"] != kpi["window_end"]):
            trend.append(number)


def _number(kpi: dict[str, Any], where: str) -> float | None:
    value = kpi["value"] if where == "value" else kpi["stats"].get(where)
    return None if value is None else float(value)


def _tile(state: ViewState, title: str, metric: str, where: str, fmt: str) -> Panel:
    kpi = state.latest.get((metric, "all"))
    number = None if kpi is None else _number(kpi, where)
    alarms = [a for (_, seg), a in state.firing.items() if a["metric"] == metric]
    style = "bold white on red" if alarms else "bold"
    body = Text("—" if number is None else fmt.format(number), style=style, justify="center")
    trend = sparkline(list(state.trends.get((metric, "all"), ())))
    lines = [body, Text(trend, justify="center")]
    if alarms:
        where_ = ", ".join(sorted(a["segment"] for a in alarms))
        lines.append(Text(f"ALERT: {where_}", style="red", justify="center"))
    subtitle = "" if kpi is None else f"{kpi['window']} · n={kpi['n']}"
    return Panel(
        Group(*lines), title=title, subtitle=subtitle, border_style="red" if alarms else ""
    )


def render(state: ViewState) -> Group:
    tiles = Table.grid(expand=True)
    for _ in TILES:
        tiles.add_column(ratio=1)
    tiles.add_row(*(_tile(state, *tile) for tile in TILES))
    tiles.add_row(*(_tile(state, *tile) for tile in CUSTOMER_TILES))

    alerts = Table(title="alerts (worker detection, SPEC §4.3)", expand=True)
    for col in ("state", "alert", "segment", "current", "baseline", "n", "at"):
        alerts.add_column(col)
    for a in state.transitions:
        style = "red" if a["state"] == "firing" else "green"
        alerts.add_row(
            Text(a["state"], style=style),
            a["alert"],
            a["segment"],
            _fmt(a["current"]),
            _fmt(a["baseline"]),
            str(a["n"]),
            a["at"],
        )
    if not state.transitions:
        alerts.add_row("—", "no alert so far", "", "", "", "", "")

    table = Table(title="cxpulse — live KPIs (shortest window with data, provisional)", expand=True)
    for col in ("metric", "segment", "window", "value", "n", "trend", "watermark"):
        table.add_column(col)
    for (metric, segment), rec in sorted(state.latest.items()):
        value = rec["value"]
        text = "—" if value is None else f"{value:.3f}"
        trend = sparkline(list(state.trends.get((metric, segment), ())))
        firing = any(a["metric"] == metric and s == segment for (_, s), a in state.firing.items())
        table.add_row(
            metric,
            segment,
            rec["window"],
            Text(text, style="bold red" if firing else ""),
            str(rec["n"]),
            trend,
            rec["watermark"] or "",
        )
    return Group(tiles, alerts, table)


def summary(state: ViewState) -> str:
    """A plain one-line summary of the headline KPIs and the alerts firing (no terminal)."""
    parts = []
    for title, metric, where, fmt in TILES:
        kpi = state.latest.get((metric, "all"))
        number = None if kpi is None else _number(kpi, where)
        parts.append(f"{title} {'—' if number is None else fmt.format(number)}")
    firing = sorted(f"{alert}@{segment}" for alert, segment in state.firing)
    parts.append("alerts firing: " + (", ".join(firing) if firing else "none"))
    return " | ".join(parts)


def transition_line(alert: dict[str, Any]) -> str:
    """One alert transition as a plain line."""
    return (
        f"alert {alert['state']}: {alert['alert']} {alert['segment']} "
        f"current={_fmt(alert['current'])} baseline={_fmt(alert['baseline'])} "
        f"n={alert['n']} at {alert['at']}"
    )


#: Seconds between two plain summaries when the output is not a terminal.
PLAIN_EVERY_S = 10.0


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


async def watch_kpis(bootstrap: str, settings: Settings, duration_s: float | None) -> None:
    from cxpulse.agents.kafka.admin import apply_topics, topic_plan
    from cxpulse.agents.kafka.security import client_options, wait_for_kafka

    order = {w.name: i for i, w in enumerate(sorted(settings.windows))}
    topics = settings.topics
    await wait_for_kafka(bootstrap, broker=settings.broker)
    # the topics must exist before subscribing, or metadata would only refresh in minutes
    plan = topic_plan(settings, embedded=False, only=(topics.kpi, topics.alerts))
    await apply_topics(bootstrap, plan, broker=settings.broker)
    consumer = AIOKafkaConsumer(
        topics.kpi,
        topics.alerts,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        **client_options(settings.broker),
    )
    await consumer.start()
    state = ViewState()
    started = time.monotonic()

    async def read() -> list[dict[str, Any]]:
        """Apply the next records to the state; the alert transitions among them."""
        alerts = []
        batch = await consumer.getmany(timeout_ms=500)
        for tp, records in batch.items():
            for rec in records:
                body = orjson.loads(rec.value)
                if tp.topic == topics.alerts:
                    state.on_alert(body)
                    alerts.append(body)
                else:
                    state.on_kpi(body, order)
        return alerts

    def running() -> bool:
        return duration_s is None or time.monotonic() - started < duration_s

    try:
        if sys.stdout.isatty():
            with Live(render(state), console=Console(), refresh_per_second=2) as live:
                while running():
                    await read()
                    live.update(render(state))
        else:
            # a pipe or a file (make demo | tee demo.log): plain lines, not a blank live view
            print(
                f"cxpulse: output is not a terminal: a plain summary every "
                f"{PLAIN_EVERY_S:.0f} s and each alert transition",
                flush=True,
            )
            printed = time.monotonic()
            while running():
                for alert in await read():
                    print(transition_line(alert), flush=True)
                if time.monotonic() - printed >= PLAIN_EVERY_S:
                    print(f"{time.strftime('%H:%M:%S')} {summary(state)}", flush=True)
                    printed = time.monotonic()
    finally:
        await consumer.stop()
