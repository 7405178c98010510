"""Faust agents, tables, timer and web views of a cxpulse worker.

Two stages, both fed whole batches by :mod:`cxpulse.agents.kafka.transport`:

* one *source* agent per metric family reads its input topic and keeps the
  per-partition engine state in that family's table (changelog co-partitioned
  with the topic), sending dead letters and bucket snapshots;
* the *merge* agent reads the internal partials topic, keeps merged buckets and
  watermarks in the merge table, and publishes final KPI records.

Every batch is delivered to the broker (changelog records, dead letters,
snapshots) and only then declared processed, the one condition under which
the consumer lets Faust ack and commit it, so a committed offset never runs
ahead of durable state (not even for a batch Faust skips in a rebalance). An
unexpected exception crashes the worker instead of escaping ``async for``
(where Faust would ack the batch and lose it): state is rebuilt from the
tables on restart and the batch is processed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import faust
import orjson
from cxpulse.agents.kafka.sender import BatchSender, Delivery
from cxpulse.agents.kafka.transport import BatchingConsumer
from cxpulse.agents.publish.gauges import KpiCollector, register_process_metrics
from cxpulse.agents.worker.app import CxApp, topic_names
from cxpulse.agents.worker.collector import CollectionPolicy
from cxpulse.agents.worker.runtime import Runtime, Send, Write, now_ms
from cxpulse.schemas.input import InputRecord
from cxpulse.streams.settings import Settings
from faust.types import TP, EventT, StreamT
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

log = logging.getLogger("cxpulse")
OUTCOMES = ("accepted", "invalid", "duplicate", "late")


class Health:
    """Why the worker is or is not consuming, for ``/healthz``."""

    def __init__(self) -> None:
        self.broker_error: str | None = None
        self.broker_error_since_ms: int | None = None
        self.last_batch_ms: int | None = None
        #: wall clock when the last rebalance (and its table recovery) completed: the
        #: moment from which this worker exports the series of its new partitions
        self.rebalanced_at_ms: int | None = None
        #: per agent, what it is doing and since when (``/healthz``): a worker that
        #: stops making progress shows where (e.g. waiting for deliveries)
        self.agents: dict[str, tuple[str, int]] = {}

    def doing(self, agent: str, what: str) -> None:
        self.agents[agent] = (what, now_ms())

    def reason(self, app: faust.App) -> str | None:
        if not app.consumer.assignment() and self.last_batch_ms is None:
            return "starting: waiting for partitions"
        if app.rebalancing:
            return "rebalancing"
        if app.in_recovery:
            return "recovering tables"
        if self.broker_error is not None:
            return f"broker unreachable: {self.broker_error}"
        return None


class InFlight:
    """Batches an agent is processing, so a revocation can wait for them to finish.

    Faust's own wait (``stream_wait_empty``) is off in cxpulse. Without a wait, a
    batch still awaiting its deliveries when the partitions are revoked finishes
    *during* the table recovery that follows: recovery re-applies the changelog
    up to the high-water mark it measured, over the batch's store writes, while
    the batch itself is acked and committed, so its effect could vanish from the
    state restored after the rebalance (found reading Faust's recovery code).
    Waiting in the revocation callback puts every batch's writes and deliveries
    before the recovery.
    """

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> None:
        self._count += 1
        self._idle.clear()

    def __exit__(self, *exc: object) -> None:
        self._count -= 1
        if not self._count:
            self._idle.set()

    @property
    def busy(self) -> bool:
        return self._count > 0

    async def idle(self) -> None:
        """Return once no batch is being processed."""
        await self._idle.wait()


class Metrics:
    """The worker's own Prometheus registry: health counters plus the KPI collector."""

    def __init__(self, runtime: Runtime, source_topics: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        register_process_metrics(self.registry)
        self.events = Counter(
            "cx_events_total",
            "Input records by outcome (heartbeats not counted)",
            ["topic", "outcome"],
            registry=self.registry,
        )
        for topic in source_topics:
            for outcome in OUTCOMES:
                self.events.labels(topic, outcome)
        self.watermark = Gauge(
            "cx_watermark_timestamp_seconds",
            "Event-time watermark of each input topic",
            ["topic"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "cx_consumer_lag",
            "Records in the partition not yet processed",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.state = Gauge(
            "cx_state_entries",
            "Entries of the state this worker holds (tables mirror it): per input topic its"
            " entities, buckets and dedup ids; the merge stage's buckets",
            ["part", "kind"],
            registry=self.registry,
        )
        self.alert_firing = Gauge(
            "cx_alert_firing",
            "1 while an alert fires",
            ["alert", "channel"],
            registry=self.registry,
        )
        self.registry.register(
            KpiCollector(
                runtime.latest_records,
                runtime.settings.segments.dimensions,
                open_gauges=runtime.open_gauges,
            )
        )


def register(app: CxApp, settings: Settings) -> Runtime:
    """Declare the topics, tables, agents, timer and pages of a worker on ``app``."""
    names = topic_names(settings)
    n = settings.topics.partitions
    runtime = Runtime(settings, names.partials)
    metrics = Metrics(runtime, names.sources.values())
    health = Health()
    in_flight = InFlight()
    collector = CollectionPolicy()
    app_any: Any = app
    app_any.cx_runtime, app_any.cx_metrics, app_any.cx_health = runtime, metrics, health
    app_any.cx_in_flight, app_any.cx_collector = in_flight, collector

    def raw_topic(name: str, **kw: Any) -> faust.TopicT:
        return app.topic(name, partitions=n, key_serializer="raw", value_serializer="raw", **kw)

    partials = raw_topic(names.partials, internal=True)
    tables = {
        family: app.Table(f"{family}-state", partitions=n, key_type=str, value_type=bytes)
        for family in names.sources
    }
    merge_table = app.Table("merge-state", partitions=n, key_type=str, value_type=bytes)

    senders: list[BatchSender] = []

    def sender() -> BatchSender:
        """The batch sender over the app's aiokafka producer (started with the app)."""
        if not senders:
            senders.append(BatchSender(app.producer._producer))  # type: ignore[attr-defined]
        return senders[0]

    async def send_all(sends: Iterable[Send]) -> list[Delivery]:
        """Hand records to the producer; their deliveries, for :func:`confirm`."""
        return await sender().send(sends)

    async def confirm(*deliveries: list[Delivery]) -> None:
        """Wait until the broker acknowledged every record; raise the first failure.

        Not ``producer.flush()``: it waits for the send queue to drain but drops
        delivery errors (they stay in futures nobody reads), so a record the broker
        refused would still let its batch be acked, a silent loss. A failure here
        stops the worker instead, and the batch is read again after the restart.
        """
        await asyncio.gather(*(d.future for group in deliveries for d in group))

    async def write_all(table: Any, partition: int, writes: Iterable[Write]) -> Changelog:
        """Send a batch's table writes to the table's changelog, in order.

        Straight to the aiokafka producer, not ``table[key] = value``: Faust's path
        goes through its send-soon buffer, whose ``flush()`` returns after 0.1 s
        without progress with messages still queued (faust-streaming 0.15.3,
        ``ProducerBuffer.flush_atmost``), so a batch could be acked and committed
        before its changelog records were produced; a SIGKILL then lost them. It
        also cost ~17 % of a worker's CPU in per-key hooks. The records are the ones
        Faust writes (JSON key, raw value, the source partition), so its recovery
        reads them back as usual. They go out as whole record batches, in order
        (:mod:`cxpulse.agents.kafka.sender`); the store is written by :func:`apply` once the
        broker confirmed them.
        """
        topic = table.changelog_topic.get_topic_name()
        pending = list(writes)
        records = [(topic, orjson.dumps(key), value, partition) for key, value in pending]
        return Changelog(table, pending, await sender().send(records))

    def apply(*changelogs: Changelog) -> None:
        """Write confirmed changelog records to their stores, and how far they reach.

        Only after delivery: a local store (``rocksdb://``) survives a SIGKILL, and
        a write it held that never reached the changelog would be state no other
        worker could recover. The persisted offset is what Faust records when its
        own table path sends; without it a restarted worker re-read the whole
        changelog into a store that already held it (1M open carts: 199 s). For
        ``memory://`` the offset is ignored (the store is rebuilt from the changelog).
        """
        for changelog in changelogs:
            store = changelog.table.data
            for key, value in changelog.writes:
                if value is None:
                    store.pop(key, None)
                else:
                    store[key] = value
            for delivery in changelog.deliveries:
                last = delivery.last_offset()
                if last is not None:
                    store.set_persisted_offset(TP(delivery.topic, delivery.partition), last)

    async def deliver(
        agent: str,
        event: EventT,
        table: Any,
        writes: list[Write],
        sends: list[Send],
        last: list[Write],
    ) -> None:
        """One batch's effects, in the order every agent relies on, then ``processed``.

        Its table writes and sends together, then, once the broker acknowledged
        all of them, the writes that declare them done (``last``); the store gets
        both only after that, and only then may the batch's offset be committed.
        """
        partition = event.message.partition
        health.doing(agent, f"awaiting deliveries, partition {partition}")
        first = await write_all(table, partition, writes)
        await confirm(first.deliveries, await send_all(sends))
        final = await write_all(table, partition, last)
        await confirm(final.deliveries)
        apply(first, final)
        batching_consumer().processed(event.message)
        collector.after_batch()
        health.doing(agent, "idle")

    def batching_consumer() -> BatchingConsumer:
        return cast(BatchingConsumer, app.consumer)

    async def crash(where: str, exc: BaseException) -> None:
        log.critical(
            "cxpulse: unexpected error in %s; stopping so no batch is lost", where, exc_info=exc
        )
        await app.crash(exc)

    def make_source_agent(family: str, topic_name: str) -> None:
        table = tables[family]
        # the input topic and the ticks topic: one agent, so a partition's state has one writer
        topic = app.topic(
            topic_name, names.ticks, partitions=n, key_serializer="raw", value_serializer="raw"
        )

        async def source(stream: StreamT) -> None:
            async for event in stream.events():
                try:
                    with in_flight:
                        await process(event)
                except Exception as exc:  # noqa: BLE001 - see the module docstring
                    await crash(f"{family} source", exc)
                    return

        async def process(event: EventT) -> None:
            partition = event.message.partition
            tick = event.message.topic == names.ticks
            health.doing(family, f"processing partition {partition}")
            result = runtime.process_source(
                family,
                partition,
                [] if tick else _records(event),
                _LazyView(table, partition),
                tick=tick,
            )
            # the commit record last: a durable one implies durable snapshots and dead
            # letters (cxpulse.streams.engine, "Exactly-once")
            last = [] if result.commit is None else [result.commit]
            await deliver(family, event, table, result.writes, result.sends, last)
            for outcome, count in result.outcomes.items():
                metrics.events.labels(topic_name, outcome).inc(count)
            health.last_batch_ms = now_ms()

        source.__name__ = f"{family}_source"
        app.agent(topic, name=f"cxpulse.{family}-source", concurrency=1)(source)

    for family, topic_name in names.sources.items():
        make_source_agent(family, topic_name)

    async def merge_batch(event: EventT) -> None:
        partition = event.message.partition
        health.doing("merge", f"processing partition {partition}")
        result = runtime.process_merge(
            partition, _records(event), _LazyView(merge_table, partition)
        )
        # the watermark last: a durable one implies durable finals (cxpulse.streams.merge)
        await deliver("merge", event, merge_table, result.writes, result.finals, result.wm_writes)

    @app.agent(partials, name="cxpulse.merge", concurrency=1)
    async def merge(stream: StreamT) -> None:
        async for event in stream.events():
            try:
                with in_flight:
                    await merge_batch(event)
            except Exception as exc:  # noqa: BLE001 - see the module docstring
                await crash("merge", exc)
                return

    tick_s = min(1.0, settings.emit_interval_ms / 1000.0)
    emit_every = max(1, round(settings.emit_interval_ms / 1000.0 / tick_s))
    ticks = 0

    @app.timer(interval=tick_s)
    async def tick() -> None:
        nonlocal ticks
        collector.tick()
        if app.rebalancing or app.in_recovery or not app.consumer.assignment():
            return
        ticks += 1
        try:
            await _send_ticks(app, names.ticks)
            if ticks % emit_every == 0:
                await send_all(runtime.provisional())
            _update_health_gauges(app, runtime, metrics)
            await _check_broker(app, health)
        except Exception:
            log.warning("cxpulse: timer tick failed", exc_info=True)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_rebalanced(sender: Any, **kwargs: Any) -> None:
        health.rebalanced_at_ms = now_ms()
        # Tables are recovered: a taken-over merge partition's series are exported now,
        # not once its first partials batch arrives and the next tick emits (up to ~2 s).
        for tp in app.consumer.assignment():
            if tp.topic == names.partials:
                runtime.restore_merge(tp.partition, _LazyView(merge_table, tp.partition))
        collector.batches_begin()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        collector.batches_end()  # table recovery ahead: no batch boundaries to collect at
        # batches in flight finish first: their writes must precede the recovery (InFlight)
        if in_flight.busy:
            log.info("cxpulse: revoking; waiting for the batches in flight")
            await in_flight.idle()
        for tp in revoked:
            family = runtime.family_of_topic.get(tp.topic)
            if family is not None:
                runtime.drop_source(family, tp.partition)
            elif tp.topic == names.partials:
                runtime.drop_merge(tp.partition)

    _register_pages(app, runtime, metrics, health, collector)
    return runtime


def _records(event: EventT) -> list[InputRecord]:
    """A batch message's records (:class:`~cxpulse.agents.kafka.transport.BatchingConsumer`)."""
    return cast(list[InputRecord], event.value)


@dataclass(frozen=True, slots=True)
class Changelog:
    """A batch's writes to one table, sent to its changelog and not yet in its store."""

    table: Any
    writes: list[Write]
    deliveries: list[Delivery]


class _LazyView(Mapping[str, bytes]):
    """A partition's table records, read only if its processor actually needs restoring."""

    def __init__(self, table: Any, partition: int) -> None:
        self._table, self._partition = table, partition
        self._data: Mapping[str, bytes] | None = None

    def _load(self) -> Mapping[str, bytes]:
        if self._data is None:
            self._data = partition_records(self._table, self._partition)
        return self._data

    def __getitem__(self, key: str) -> bytes:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def partition_records(table: Any, partition: int) -> dict[str, bytes]:
    """The records of one partition of a cxpulse table (keys start with ``"<partition>|"``).

    A ``rocksdb://`` store keeps one database per partition, and only that one is
    read and decoded; reading every partition's records (the whole table) for each
    partition restored cost as many times the work as the worker has partitions.
    The memory store is one dict: its keys are filtered by prefix.
    """
    store = table.data
    db_for_partition = getattr(store, "_db_for_partition", None)
    if db_for_partition is None:
        prefix = f"{partition}|"
        return {key: value for key, value in store.items() if key.startswith(prefix)}
    decode_key, decode_value = store._decode_key, store._decode_value
    return {
        decode_key(key): decode_value(value)
        for key, value in store._visible_items(db_for_partition(partition))
    }


async def _send_ticks(app: faust.App, ticks_topic: str) -> None:
    """A tick to every owned partition of the ticks topic: time passes for idle partitions too.

    Each source agent reads the ticks of its partitions and, in stream context (so its
    table writes go to the right changelog partition), makes the time-driven decisions
    and reports its status, even for partitions that never had a record.
    """
    for tp in app.consumer.assignment():
        if tp.topic == ticks_topic:
            await app.producer.send(ticks_topic, None, b"{}", tp.partition, None, None)


def _update_health_gauges(app: faust.App, runtime: Runtime, metrics: Metrics) -> None:
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


async def _check_broker(app: faust.App, health: Health) -> None:
    """A metadata round trip: the cheapest proof that the broker answers."""
    client = app.producer._producer.client if app.producer._producer else None  # type: ignore[attr-defined]
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


def _register_pages(
    app: CxApp, runtime: Runtime, metrics: Metrics, health: Health, collector: CollectionPolicy
) -> None:
    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> Response:
        return web.text(generate_latest(metrics.registry).decode(), content_type="text/plain")

    @app.page("/kpis")
    async def kpis_page(web: View, request: Request) -> Response:
        records = sorted(
            runtime.latest_records(), key=lambda r: (r["metric"], r["window"], r["segment"])
        )
        return web.json({"records": records, "finals": runtime.latest_finals()})

    @app.page("/healthz")
    async def healthz_page(web: View, request: Request) -> Response:
        reason = health.reason(app)
        agents = {name: {"doing": what, "since": at} for name, (what, at) in health.agents.items()}
        if reason is None:
            body = {
                "status": "ok",
                "rebalanced_at": health.rebalanced_at_ms,
                "agents": agents,
                "merge": runtime.merge_watermarks(),
                "gc": {
                    "batch_driven": collector.driving,
                    "young": collector.young_runs,
                    "full": collector.full_runs,
                },
            }
            return web.json(body)
        return web.json({"status": "unavailable", "reason": reason, "agents": agents}, status=503)
