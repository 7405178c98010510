"""The two-phase delivery every agent follows for a batch, before its offset may be committed.

A batch's table writes and sends go out together; once the broker acknowledged
all of them, the writes that declare them done (``last``: a source's commit
record, the merge stage's watermarks); the local store gets both only after
that, and only then is the batch declared processed to the consumer, the one
condition under which its offset is committed.

An agent processes its next batch while the broker acknowledges the previous
one's records (:class:`Handover`); the deliveries themselves still run one at a
time, in the order the batches were processed, so every changelog and topic
receives exactly the records, in exactly the order, it would without the overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from inspect import CORO_CREATED, getcoroutinestate
from typing import Any, cast

import faust
from faust.stores.memory import Store as MemoryStore
from faust.types import TP, EventT

from cxpulse.agents.kafka.sender import BatchSender, Delivery, app_producer
from cxpulse.agents.kafka.transport import BatchingConsumer
from cxpulse.agents.worker.collector import CollectionPolicy
from cxpulse.agents.worker.health import Health, InFlight
from cxpulse.agents.worker.runtime import Send, Write
from cxpulse.schemas.encoding import dumps_kept


@dataclass(frozen=True, slots=True)
class Changelog:
    """A batch's writes to one table, sent to its changelog and not yet in its store."""

    table: Any
    writes: list[Write]
    deliveries: list[Delivery]


class Deliverer:
    """Sends, confirms and applies one batch's effects (module docstring), for every agent."""

    def __init__(self, app: faust.App, health: Health, collector: CollectionPolicy) -> None:
        self._app = app
        self._health = health
        self._collector = collector
        self._sender: BatchSender | None = None

    def sender(self) -> BatchSender:
        """The batch sender over the app's aiokafka producer (started with the app)."""
        if self._sender is None:
            self._sender = BatchSender(app_producer(self._app))
        return self._sender

    async def send_all(self, sends: Iterable[Send]) -> list[Delivery]:
        """Hand records to the producer; their deliveries, for :meth:`confirm`."""
        return await self.sender().send(sends)

    @staticmethod
    async def confirm(*deliveries: list[Delivery]) -> None:
        """Wait until the broker acknowledged every record; raise the first failure.

        Not ``producer.flush()``: it waits for the send queue to drain but drops
        delivery errors (they stay in futures nobody reads), so a record the broker
        refused would still let its batch be acked, a silent loss. A failure here
        stops the worker instead, and the batch is read again after the restart.
        """
        await asyncio.gather(*(d.future for group in deliveries for d in group))

    async def write_all(self, table: Any, partition: int, writes: Iterable[Write]) -> Changelog:
        """Send a batch's table writes to the table's changelog, in order.

        Straight to the aiokafka producer, not ``table[key] = value``: Faust's path
        goes through its send-soon buffer, whose ``flush()`` returns after 0.1 s
        without progress with messages still queued (faust-streaming 0.15.3,
        ``ProducerBuffer.flush_atmost``), so a batch could be acked and committed
        before its changelog records were produced, and a SIGKILL would lose them;
        its per-key hooks also cost ~17 % of a worker's CPU. The records are the
        ones Faust writes (JSON key, raw value, the source partition), so its
        recovery reads them back as usual. The store is written by :meth:`apply`
        once the broker confirmed them.
        """
        topic = table.changelog_topic.get_topic_name()
        pending = list(writes)
        records = [(topic, dumps_kept(key), value, partition) for key, value in pending]
        return Changelog(table, pending, await self.sender().send(records))

    @staticmethod
    def apply(*changelogs: Changelog) -> None:
        """Write confirmed changelog records to their stores, and how far they reach.

        Only after delivery: a local store (``rocksdb://``) survives a SIGKILL, and
        a write it held that never reached the changelog would be state no other
        worker could recover. The persisted offset is what Faust records when its
        own table path sends; without it a restarted worker re-reads the whole
        changelog into a store that already holds it. A ``memory://`` store gets the
        deletes only: it is read just after Faust's recovery replayed the changelog
        into it, so a copy of the values the engine holds would only cost memory
        (docs/design.md); its offset is ignored.
        """
        for changelog in changelogs:
            store = changelog.table.data
            keeps_values = not isinstance(store, MemoryStore)
            for key, value in changelog.writes:
                if value is None:
                    store.pop(key, None)
                elif keeps_values:
                    store[key] = value
            for delivery in changelog.deliveries:
                last = delivery.last_offset()
                if last is not None:
                    store.set_persisted_offset(TP(delivery.topic, delivery.partition), last)

    async def deliver(
        self,
        agent: str,
        event: EventT,
        table: Any,
        writes: list[Write],
        sends: list[Send],
        last: list[Write],
    ) -> None:
        """One batch's effects, in the order every agent relies on, then ``processed``."""
        partition = event.message.partition
        self._health.doing(agent, f"awaiting deliveries, partition {partition}")
        first = await self.write_all(table, partition, writes)
        await self.confirm(first.deliveries, await self.send_all(sends))
        final = await self.write_all(table, partition, last)
        await self.confirm(final.deliveries)
        self.apply(first, final)
        cast(BatchingConsumer, self._app.consumer).processed(event.message)
        self._collector.after_batch()
        self._health.doing(agent, "idle")


class Handover:
    """One agent's deliveries, run one at a time in the order its batches were processed.

    A delivery mostly waits: two acknowledged produce round trips (20-45 ms on the
    embedded broker, the idle third of a draining worker's main thread). With the
    handover, the agent processes its next batch in that wait; the batch's own
    delivery starts once the previous one is confirmed, so the broker sees the same
    records in the same order as without it, and the exactly-once argument
    (:mod:`cxpulse.streams.engine`) is unchanged: a changelog partition holds
    complete batches plus at most the writes of one more. At most one batch waits,
    processed, behind the delivery in flight, so memory grows by one batch's effects.

    A delivery counts in ``in_flight`` until it ends, so a revocation waits for it.
    A failed one is reported at once through ``on_error`` (the worker crashes; the
    batch is read again after the restart), not only when the next batch arrives;
    :meth:`put` and :meth:`drain` then raise :class:`DeliveryFailed`.
    """

    def __init__(
        self, in_flight: InFlight, on_error: Callable[[BaseException], Awaitable[None]]
    ) -> None:
        self._in_flight = in_flight
        self._on_error = on_error
        self._pending: asyncio.Task[bool] | None = None
        self._delivery: Coroutine[Any, Any, None] | None = None

    async def put(self, delivery: Coroutine[Any, Any, None]) -> None:
        """Start ``delivery`` once the previous one is confirmed."""
        try:
            await self.drain()
        except BaseException:
            delivery.close()  # never started: the batch is read again after the restart
            raise
        self._in_flight.begin()
        task = asyncio.ensure_future(self._run(delivery))
        task.add_done_callback(lambda _: self._in_flight.end())
        self._pending, self._delivery = task, delivery

    async def drain(self) -> None:
        """Return once every delivery handed over is confirmed; raise if one failed."""
        pending, self._pending = self._pending, None
        if pending is not None and not await pending:
            raise DeliveryFailed

    def cancel(self) -> None:
        """Cancel the delivery in flight, if any (its agent is stopping)."""
        if self._pending is not None:
            self._pending.cancel()
            if self._delivery is not None and getcoroutinestate(self._delivery) == CORO_CREATED:
                self._delivery.close()  # cancelled before it started
            self._pending = self._delivery = None

    async def _run(self, delivery: Coroutine[Any, Any, None]) -> bool:
        try:
            await delivery
        except Exception as exc:  # noqa: BLE001 - reported, then the worker stops
            await self._on_error(exc)
            return False
        return True


class DeliveryFailed(Exception):
    """A batch handed over was not delivered (already reported; the worker is stopping)."""
