"""The Faust app, built once from :class:`~cxpulse.streams.settings.Settings` (no module-level app).

Faust provides group membership, rebalancing, changelog-backed tables with
recovery, the producer, timers and the web server. cxpulse changes only how
records reach its agents (one Faust message per fetched batch, see
:mod:`cxpulse.agents.kafka.transport`) and silences the start-up spinner, which otherwise
leaves the root logger at DEBUG and costs ~12 % CPU.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TransportT

from cxpulse.agents.kafka.security import faust_credentials
from cxpulse.agents.kafka.transport import BatchingTransport
from cxpulse.agents.logs import configure_logging
from cxpulse.streams.settings import Settings


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


#: the fetch wait with the embedded broker: at most this is added to an event's latency
#: when it reaches an idle worker (a fetch every 100 ms while there is nothing to read)
EMBEDDED_FETCH_WAIT_MS = 100


class CxApp(faust.App):
    """Faust app whose consumer hands cxpulse whole batches of :attr:`batched_topics`."""

    #: the topics whose fetched batches reach agents whole (inputs, partials, ticks)
    batched_topics: frozenset[str] = frozenset()

    #: the longest a fetch may wait for records, in ms (None: faust-streaming's 1,500). A
    #: Kafka broker answers a waiting fetch as soon as records arrive; Tansu holds it to
    #: the end, so with Faust's wait a record produced to an idle worker waited up to
    #: 1.5 s before it was even fetched (docs/peers.md, "Latency")
    fetch_max_wait_ms: int | None = None

    #: called as every rebalance ends: the tables are recovered for the current
    #: assignment and no batch of it has been handed to an agent yet
    cx_on_ready: Callable[[], None] | None = None

    def _new_transport(self) -> TransportT:
        return BatchingTransport(self.conf.broker_consumer, self)

    def on_rebalance_end(self) -> None:
        """Faust's end of a rebalance (after its generation check), then :attr:`cx_on_ready`."""
        super().on_rebalance_end()
        if self.cx_on_ready is not None:
            self.cx_on_ready()


class QuietWorker(faust.Worker):
    """Faust worker without the terminal spinner (it forces the root logger to DEBUG) and
    with cxpulse's logging (:mod:`cxpulse.agents.logs`) instead of mode's."""

    log_format: str = "text"

    def _setup_spinner_handler(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None

    def _setup_logging(self) -> None:
        self.spinner = None  # mode would call _setup_spinner_handler from its own set-up
        configure_logging(self.log_format, self.loglevel or logging.WARNING)
        if self.redirect_stdouts:
            self._redirect_stdouts()


def changelog_topics(app: faust.App) -> dict[str, int]:
    """The changelog topic of each table registered on ``app``, with its partitions."""
    out: dict[str, int] = {}
    for table in app.tables.values():
        topic = table.changelog_topic
        out[topic.get_topic_name()] = topic.partitions or app.conf.topic_partitions
    return out


def internal_topics(settings: Settings) -> dict[str, int]:
    """The worker's own non-table topics: partials, ticks, and Faust's leader topic."""
    names = topic_names(settings)
    n = settings.topics.partitions
    return {names.partials: n, names.ticks: n, f"{settings.worker.app_id}-__assignor-__leader": 1}


def create_app(settings: Settings, broker_url: str, *, embedded: bool) -> CxApp:
    """A Faust app for these settings; ``embedded`` tunes it for the local Tansu broker.

    Its clients connect with ``[broker]``'s security (:func:`faust_credentials`); the
    topics it declares itself get ``[topics]``'s replication factor.
    """
    names = topic_names(settings)
    options: dict[str, Any] = {
        "broker": broker_url,
        "store": settings.store.url,
        "datadir": settings.store.data_dir,
        "broker_credentials": faust_credentials(settings.broker),
        "web_port": settings.web_port,
        "web_bind": settings.web_host,
        # the worker's name in the group (Faust's canonical URL), not the bind address
        "web_host": "127.0.0.1" if embedded else None,
        "topic_partitions": settings.topics.partitions,
        "topic_replication_factor": settings.topics.replication_factor_for(embedded=embedded),
        "table_standby_replicas": 0,
        "producer_acks": -1,
        # a too_large record (> 1 MiB) is copied whole to the dead-letter topic
        "producer_max_request_size": 8 << 20,
        # agents produce whole record batches (cxpulse.agents.kafka.sender): fewer, bigger batches,
        # a whole batch still under Kafka's default message.max.bytes (1,048,588). A batch's
        # changelog goes to one partition one produce request at a time, so its size sets how
        # many round trips a delivery waits for (measured against 524,288 bytes:
        # docs/performance.md, "Where the time goes"; lower cluster limits: docs/operations.md)
        "producer_max_batch_size": 1_000_000,
        "consumer_auto_offset_reset": "earliest",
        "broker_commit_interval": settings.worker.commit_interval_ms / 1000.0,
        # big fetches make big batches: per-batch costs (a flush, one write per key) amortise
        "broker_max_poll_records": 20_000,
        "consumer_max_fetch_size": 8 << 20,
        "stream_wait_empty": False,
        # Faust's per-agent queue, in messages, and one message is a fetched batch: with its
        # default (4,096) a live worker prefetched hundreds of small batches and paid a
        # delivery (two acknowledged produce round trips) for each, so it fell behind a
        # stream at a quarter of its drain rate. A short queue stalls the fetch instead,
        # and the records waiting in the broker come in the next fetch as one batch
        # (docs/peers.md, "Latency")
        "stream_buffer_maxsize": 4,
        "value_serializer": "raw",
        "key_serializer": "raw",
    }
    if embedded:
        # Tansu waits half the session timeout before completing a group join.
        options.update(broker_session_timeout=6.0, broker_heartbeat_interval=1.0)
    options = {k: v for k, v in options.items() if v is not None}
    app = CxApp(settings.worker.app_id, **options)
    app.batched_topics = frozenset([*names.sources.values(), names.partials, names.ticks])
    if embedded:
        app.fetch_max_wait_ms = EMBEDDED_FETCH_WAIT_MS
    return app
