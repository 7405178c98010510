"""The Faust app, built once from :class:`~cxpulse.streams.settings.Settings` (no module-level app).

Faust provides group membership, rebalancing, changelog-backed tables with
recovery, the producer, timers and the web server. cxpulse changes only how
records reach its agents (one Faust message per fetched batch, see
:mod:`cxpulse.agents.kafka.transport`) and silences the start-up spinner, which otherwise
leaves the root logger at DEBUG and costs ~12 % CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import faust
from cxpulse.agents.kafka.transport import BatchingConsumer, BatchingTransport
from cxpulse.streams.settings import Settings
from faust.types import TransportT


@dataclass(frozen=True, slots=True)
class Topics:
    """Names of every topic the worker reads or writes."""

    sources: dict[str, str]  # family -> input topic
    partials: str
    ticks: str
    kpi: str
    alerts: str
    deadletter: str


def topic_names(settings: Settings) -> Topics:
    t = settings.topics
    return Topics(
        sources={"survey": t.survey, "cart": t.cart, "ticket": t.ticket, "customer": t.customer},
        partials=f"{settings.worker.app_id}.partials",
        ticks=f"{settings.worker.app_id}.ticks",
        kpi=t.kpi,
        alerts=t.alerts,
        deadletter=t.deadletter,
    )


class CxApp(faust.App):
    """Faust app whose consumer hands cxpulse whole batches."""

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)


class QuietWorker(faust.Worker):
    """Faust worker without the terminal spinner (it forces the root logger to DEBUG)."""

    def _setup_spinner_handler(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None


def create_app(settings: Settings, broker_url: str, *, embedded: bool) -> CxApp:
    """A Faust app for these settings; ``embedded`` tunes it for the local Tansu broker."""
    names = topic_names(settings)
    BatchingConsumer.batched_topics = frozenset(
        [*names.sources.values(), names.partials, names.ticks]
    )
    options: dict[str, Any] = {
        "broker": broker_url,
        "store": settings.store.url,
        "datadir": settings.store.data_dir,
        "web_port": settings.web_port,
        "web_host": "127.0.0.1" if embedded else None,
        "topic_partitions": settings.topics.partitions,
        "topic_replication_factor": 1 if embedded else 3,
        "table_standby_replicas": 0,
        "producer_acks": -1,
        # a too_large record (> 1 MiB) is copied whole to the dead-letter topic
        "producer_max_request_size": 8 << 20,
        # agents produce whole record batches (cxpulse.agents.kafka.sender): fewer, bigger batches,
        # still well under Kafka's default 1 MB message.max.bytes
        "producer_max_batch_size": 512 << 10,
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": settings.worker.commit_interval_ms / 1000.0,
        # big fetches make big batches: per-batch costs (a flush, one write per key) amortise
        "broker_max_poll_records": 20_000,
        "consumer_max_fetch_size": 8 << 20,
        "stream_wait_empty": False,
        "value_serializer": "raw",
        "key_serializer": "raw",
    }
    if embedded:
        # Tansu waits half the session timeout before completing a group join.
        options.update(broker_session_timeout=6.0, broker_heartbeat_interval=1.0)
    options = {k: v for k, v in options.items() if v is not None}
    return CxApp(settings.worker.app_id, **options)
