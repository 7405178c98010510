"""The worker's timer: ticks for idle partitions, provisional records, health gauges."""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.types import TP

from cxpulse.agents.kafka.sender import app_client
from cxpulse.agents.publish.metrics import Metrics
from cxpulse.agents.worker.context import Worker
from cxpulse.agents.worker.health import Health
from cxpulse.agents.worker.runtime import Runtime, now_ms

log = logging.getLogger("cxpulse")


def add_timer(w: Worker) -> None:
    """Every ≤ 1 s: collect garbage if due, tick, and every emit interval send provisionals."""
    tick_s = min(1.0, w.settings.emit_interval_ms / 1000.0)
    emit_every = max(1, round(w.settings.emit_interval_ms / 1000.0 / tick_s))
    ticks = 0
    app = w.app

    async def tick() -> None:
        nonlocal ticks
        w.collector.tick()
        if app.rebalancing or app.in_recovery or not app.consumer.assignment():
            return
        ticks += 1
        try:
            await send_ticks(app, w.names.ticks)
            if ticks % emit_every == 0:
                await w.deliverer.send_all(w.runtime.provisional())
            update_health_gauges(app, w.runtime, w.metrics)
            await check_broker(app, w.health)
        except Exception:
            log.warning("cxpulse: timer tick failed", exc_info=True)

    app.timer(interval=tick_s)(tick)


async def send_ticks(app: faust.App, ticks_topic: str) -> None:
    """A tick to every owned partition of the ticks topic: time passes for idle partitions too.

    Each source agent reads the ticks of its partitions and, in stream context (so its
    table writes go to the right changelog partition), makes the time-driven decisions
    and reports its status, even for partitions that never had a record.
    """
    for tp in app.consumer.assignment():
        if tp.topic == ticks_topic:
            await app.producer.send(ticks_topic, None, b"{}", tp.partition, None, None)


def update_health_gauges(app: faust.App, runtime: Runtime, metrics: Metrics) -> None:
    metrics.alert_firing.clear()
    for alert, segment, firing in runtime.firing():
        if segment == "all" or segment.startswith("channel="):
            channel = segment.partition("=")[2] or "all"
            metrics.alert_firing.labels(alert, channel).set(1 if firing else 0)
    for topic, seconds in runtime.watermark_seconds().items():
        metrics.watermark.labels(topic).set(seconds)
    metrics.state.clear()
    for (part, kind), count in runtime.state_entries().items():
        metrics.state.labels(part, kind).set(count)
    metrics.lag.clear()  # partitions revoked from this worker are another's series now
    for (family, partition), proc in list(runtime.processors.items()):
        topic = runtime.topic_of[family]
        highwater = app.consumer.highwater(TP(topic, partition))
        if highwater is not None:
            metrics.lag.labels(topic, str(partition)).set(max(highwater - proc.offset - 1, 0))


async def check_broker(app: faust.App, health: Health) -> None:
    """A metadata round trip: the cheapest proof that the broker answers."""
    client = app_client(app)
    if client is None:
        return
    try:
        await asyncio.wait_for(client.fetch_all_metadata(), timeout=2.0)
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        if health.broker_error is None:
            health.broker_error_since_ms = now_ms()
        health.broker_error = type(exc).__name__ or "timeout"
    else:
        health.broker_error = None
        health.broker_error_since_ms = None
