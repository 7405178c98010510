"""The Faust agents of a worker: one source agent per metric family, and the merge agent.

Both are fed whole batches by :mod:`cxpulse.agents.kafka.transport` and hand each
to the runtime, then its effects to the agent's
:class:`~cxpulse.agents.worker.delivery.Handover`, which delivers them in order;
a source agent processes its next batch meanwhile.
An unexpected exception crashes the worker instead of escaping ``async for``
(where Faust would ack the batch and lose it): state is rebuilt from the tables
on restart and the batch is processed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, cast

from faust.types import EventT, StreamT

from cxpulse.agents.kafka.store import LazyView
from cxpulse.agents.worker.context import Worker
from cxpulse.agents.worker.delivery import DeliveryFailed, Handover
from cxpulse.agents.worker.runtime import SourceResult, now_ms
from cxpulse.schemas.input import InputRecord

log = logging.getLogger("cxpulse")


def records_of(event: EventT) -> list[InputRecord]:
    """A batch message's records (:class:`~cxpulse.agents.kafka.transport.BatchingConsumer`)."""
    return cast(list[InputRecord], event.value)


async def _crash(w: Worker, where: str, exc: BaseException) -> None:
    log.critical(
        "cxpulse: unexpected error in %s; stopping so no batch is lost", where, exc_info=exc
    )
    await w.app.crash(exc)


def hold(event: EventT) -> None:
    """Keep Faust's stream from acknowledging a batch whose delivery is still to come.

    The stream acks the batch it handed out as the agent asks for the next one,
    and with the handover that comes before the batch is delivered: the
    consumer would take it for a skipped batch, forget what it covers and read
    the partition again, and the commits would stop at it. One more reference on
    the message makes the stream's ack only drop that reference; the last one is
    :func:`acked_after`'s, once the delivery ended (faust-streaming 0.15.3
    ``Message.incref`` / ``Message.ack``).
    """
    event.message.incref()


async def acked_after(event: EventT, delivery: Coroutine[Any, Any, None]) -> None:
    """Run ``delivery``, then acknowledge its batch (see :func:`hold`)."""
    try:
        await delivery
    finally:
        event.ack()  # not processed (a failed delivery): read again, as a skipped batch


async def _run_agent(
    w: Worker,
    where: str,
    stream: StreamT,
    process: Callable[[EventT], Coroutine[Any, Any, None]],
    *,
    overlap: bool = True,
) -> None:
    """Every batch processed in order, its delivery handed over (:class:`Handover`).

    A batch counts as in flight from before its processing until its delivery
    ends, so a revocation waits for both. Without ``overlap`` the agent waits for
    each delivery before it takes the next batch. The merge agent does: its
    batches' effects (closed windows' final records, merged buckets) are the
    large ones, and holding two of them at once cost ~50 MB of peak RSS on the
    mixed workload (``cxpulse bench --workload mixed --workers 1 --events 200000
    --event-time-rate 28``: 266-291 MB against 229-236 with the merge sequential),
    while the merge stage is ~4 % of a draining worker's time (docs/peers.md).
    """

    async def crash(exc: BaseException) -> None:
        await _crash(w, where, exc)

    handover = Handover(w.in_flight, crash)
    try:
        async for event in stream.events():
            with w.in_flight:
                delivery = process(event)
                hold(event)
                await handover.put(acked_after(event, delivery))
                if not overlap:
                    await handover.drain()
        await handover.drain()
    except DeliveryFailed:
        return
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        await crash(exc)
    finally:
        handover.cancel()


def add_source_agent(w: Worker, family: str, topic_name: str) -> None:
    """The agent of one family: its input topic and the ticks topic, one writer per partition."""
    table = w.tables[family]
    topic = w.app.topic(
        topic_name,
        w.names.ticks,
        partitions=w.settings.topics.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )

    def process(event: EventT) -> Coroutine[Any, Any, None]:
        """Apply the batch now; its delivery (a coroutine) goes to the handover."""
        partition = event.message.partition
        tick = event.message.topic == w.names.ticks
        w.health.doing(family, f"processing partition {partition}")
        result = w.runtime.process_source(
            family,
            partition,
            [] if tick else records_of(event),
            LazyView(table, partition),
            tick=tick,
        )
        return deliver(event, result)

    async def deliver(event: EventT, result: SourceResult) -> None:
        # the commit record last: a durable one implies durable snapshots and dead
        # letters (cxpulse.streams.engine, "Exactly-once")
        last = [] if result.commit is None else [result.commit]
        await w.deliverer.deliver(family, event, table, result.writes, result.sends, last)
        for outcome, count in result.outcomes.items():
            w.metrics.events.labels(topic_name, outcome).inc(count)
        w.health.last_batch_ms = now_ms()

    async def source(stream: StreamT) -> None:
        await _run_agent(w, f"{family} source", stream, process)

    source.__name__ = f"{family}_source"
    w.app.agent(topic, name=f"cxpulse.{family}-source", concurrency=1)(source)


def add_merge_agent(w: Worker, partials: object) -> None:
    """The merge agent: partials of every source partition → windows → final KPI records."""

    def merge_batch(event: EventT) -> Coroutine[Any, Any, None]:
        partition = event.message.partition
        w.health.doing("merge", f"processing partition {partition}")
        result = w.runtime.process_merge(
            partition, records_of(event), LazyView(w.merge_table, partition)
        )
        # the watermark last: a durable one implies durable finals (cxpulse.streams.merge)
        return w.deliverer.deliver(
            "merge", event, w.merge_table, result.writes, result.finals, result.wm_writes
        )

    async def merge(stream: StreamT) -> None:
        await _run_agent(w, "merge", stream, merge_batch, overlap=False)

    w.app.agent(partials, name="cxpulse.merge", concurrency=1)(merge)  # type: ignore[arg-type]
