"""A Faust transport that hands whole fetched batches to agents, and finds true end offsets.

Why: a stock Faust agent costs ~200 µs of framework machinery per Kafka record
(fetcher → conductor → channel queue → stream → ack, each with task switches).
cxpulse aggregates per batch anyway, so for the topics it names this consumer
yields *one* Faust message per fetched (topic, partition) batch: its ``value``
is the list of aiokafka records (:class:`~cxpulse.schemas.input.InputRecord`) and its ``offset`` the
batch's last offset. Faust still does everything else (group membership,
rebalancing, acks and commits of that last offset, table changelogs and
recovery, flow control); everything else it consumes (table changelogs during
recovery) stays one message per record.

Acknowledgements. Faust's stream iterator acks every message it takes from
its queue, including the ones it *skips* (delivered just before a rebalance,
with flow control off or from an older consumer generation) and the one an
agent was handling when it crashed or was cancelled. For a one-record message
that costs a re-read at worst; for a batch it is a loss: the skipped batch's
last offset is acked, Faust's gap filling makes every offset up to it
committable, the commit lands before the post-rebalance seek, and the batch
is never read again (seen as whole windows missing after a SIGKILL and
restart, when the dead member's expiry causes a second rebalance).
:class:`BatchingConsumer` therefore acks a batch message only after the agent
declared it :meth:`~BatchingConsumer.processed` (its effects flushed to the
broker); anything else is read again, which the processors make harmless.

Committing. Faust commits the end of the first run of consecutive acked
offsets, counting the offsets between two messages it read as done (its "gap"
filling, meant for compacted topics and transaction markers). For batch messages
that does not hold: faust-streaming 0.15.3 records each gap *including* the
offset of the message after it (``Consumer._add_gap`` adds one to an end that
already is the next message's offset), so every batch's last offset is counted
twice, every run ends at a batch, and each commit moved past one batch only:
under steady traffic (many small batches per commit interval) the committed
offsets fell further behind the processed ones forever, and the acked list grew
without bound (seen: 16k records behind and growing after 4 minutes of a
marker flood; "Has not committed" warnings in CI; upstream: faust-streaming/faust#606,
robinhood/faust#625). And gap filling counts a
batch's records as done once a *later* batch is acked, even if the batch itself
was skipped. So for batched topics the consumer keeps its own account: each
batch declared :meth:`~BatchingConsumer.processed` marks its offsets as done,
from just after the previous batch handed on for its partition, or from where
the partition was sought to (so offsets the fetch did not return, e.g.
transaction markers, count as done too), through its last; the committable
offset is the end of the done range that starts at the committed offset
(:meth:`BatchingConsumer._new_offset`).
A batch the stream skipped leaves a hole there, and the partition is read again
from the committed offset (:attr:`BatchingConsumer.reseek`), so the hole fills.

Rewinding. After the table recovery of a rebalance Faust seeks its stream
partitions to their committed offsets, having dropped what it fetched for
them meanwhile; partitions without a committed offset were left where the
dropped fetch ended (:meth:`BatchingConsumer.perform_seek` rewinds them).
Faust also resumes those partitions before that seek and clears the agents'
queues when the rebalance ends, so batches are held for the whole rebalance
and read again from the committed offsets after it (:meth:`BatchingConsumer.getmany`).

Second fix: the embedded broker (Tansu) has been seen answering
``ListOffsets(latest)`` with an offset below the true end, while fetch
responses carry the right high-water mark. Faust's table recovery reads
changelogs up to ``highwaters()``, so a low answer would silently recover only
part of a table. :meth:`TrueEndConsumerThread._highwaters` therefore asks a
short-lived assign-only consumer to fetch at the reported end and takes the
larger of the two.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, cast

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import Message

log = logging.getLogger("cxpulse")


class TrueEndConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Consumer thread whose ``highwaters`` do not trust a low ``ListOffsets`` answer."""

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = dict(await super()._highwaters(partitions))
        if not reported:
            return reported
        conf = self.app.conf
        auth = faust_aiokafka.credentials_to_aiokafka_auth(
            conf.broker_credentials, conf.ssl_context
        )
        return await probe_true_ends(self._ensure_consumer(), reported, auth)


async def probe_true_ends(
    consumer: AIOKafkaConsumer, reported: Mapping[TP, int], auth: Mapping[str, Any] | None = None
) -> dict[TP, int]:
    """Fetch from each reported end offset and return the high-water marks the fetch saw.

    ``auth`` is the security of the worker's own clients (Faust's broker credentials as
    aiokafka arguments): the probe connects to the same cluster the same way.
    """
    client = consumer._client  # the bootstrap servers of the worker's own consumer
    probe = AIOKafkaConsumer(
        bootstrap_servers=client._bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=50,
        **dict(auth or {}),
    )
    await probe.start()
    try:
        tps = list(reported)
        probe.assign(tps)
        for tp in tps:
            probe.seek(tp, max(reported[tp] - 1, 0))
        true_ends = dict(reported)
        pending = set(tps)
        deadline = asyncio.get_running_loop().time() + 30.0
        while pending and asyncio.get_running_loop().time() < deadline:
            await probe.getmany(*pending, timeout_ms=200, max_records=1)
            for tp in list(pending):
                hw = probe.highwater(tp)
                if hw is not None:
                    true_ends[tp] = max(true_ends[tp], hw)
                    pending.discard(tp)
        if pending:
            # Never recover silently short: a low end would lose table state.
            raise RuntimeError(f"could not read the end offsets of {sorted(pending)}")
        return true_ends
    finally:
        await probe.stop()


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust consumer yielding one message per fetched batch for :attr:`batched_topics`.

    Batch messages are acked only once an agent declared them processed (see the
    module docstring).
    """

    #: Topic names delivered as batches; set by :func:`cxpulse.agents.worker.app.create_app`.
    batched_topics: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._processed: set[tuple[TP, int]] = set()
        #: batches were dropped after aiokafka had moved past them: seek to the
        #: committed offsets before the next fetch (see :meth:`getmany`)
        self.reseek = False
        #: per batched partition, the offsets processed and not yet committed (see
        #: "Committing" in the module docstring)
        self.done: dict[TP, DoneRanges] = {}
        #: (partition, last offset) of each batch handed on -> the first offset it covers
        self._covers: dict[tuple[TP, int], int] = {}
        #: where reading began on partitions without a committed offset
        self._origin: dict[TP, int] = {}
        #: per batched partition, the offset after the last batch handed on (or the
        #: offset it was sought to): where the next batch's account begins
        self._next: dict[TP, int] = {}

    async def perform_seek(self) -> None:
        """Seek to the committed offsets and, unlike Faust, rewind partitions without one.

        While tables recover, Faust fetches records of its stream partitions and
        drops them (they are not active yet), then seeks every partition back to
        its committed offset. aiokafka's ``seek_to_committed`` skips partitions
        with no commit (or a commit of 0), so their dropped records were lost: a
        worker killed before its first commit lost the head of each such
        partition on restart. They go back to their first offset (the
        ``earliest`` reset policy); processing them again is harmless.
        """
        await super().perform_seek()
        log.info(
            "cxpulse: stream partitions resume at committed offsets %s",
            {
                f"{tp.topic}:{tp.partition}": self._committed_offset.get(tp)
                for tp in sorted(self.assignment())
                if tp.topic in self.batched_topics
            },
        )
        uncommitted = [
            tp
            for tp in self.assignment()
            if tp.topic in self.batched_topics and not self._committed_offset.get(tp)
        ]
        if uncommitted:
            earliest = await self.earliest_offsets(*uncommitted)
            origin = {tp: earliest.get(tp, 0) for tp in uncommitted}
            self._origin.update(origin)
            await self.seek_wait(origin)
        # reading resumes at the committed offsets: the account starts over from them
        assigned = self.assignment()
        self._forget({tp for tp in (*self.done, *self._origin, *self._next) if tp not in assigned})
        self._covers.clear()
        for tp in assigned:
            start = self._start(tp) if tp.topic in self.batched_topics else None
            if start is not None:
                self._next[tp] = start

    def _start(self, tp: TP) -> int | None:
        """Where the account of ``tp`` begins: its committed offset, else where reading began."""
        return self._committed_offset.get(tp) or self._origin.get(tp)

    def _forget(self, tps: set[TP]) -> None:
        """Drop the account of partitions this consumer no longer reads."""
        for tp in tps:
            self.done.pop(tp, None)
            self._origin.pop(tp, None)
            self._next.pop(tp, None)
        for key in [k for k in self._covers if k[0] in tps]:
            del self._covers[key]

    def processed(self, message: Message) -> None:
        """Declare a batch message's effects durable: only now may its offsets be committed."""
        key = (message.tp, message.offset)
        self._processed.add(key)
        first = self._covers.pop(key, message.offset)
        self.done.setdefault(message.tp, DoneRanges()).add(first, message.offset)

    def ack(self, message: Message) -> bool:
        if message.topic in self.batched_topics:
            key = (message.tp, message.offset)
            if key not in self._processed:
                # skipped by the stream, or its agent failed: it is read again from the
                # committed offset (its hole stops the commits until then)
                self._unacked_messages.discard(message)
                self._covers.pop(key, None)
                self.reseek = True
                log.info(
                    "cxpulse: not acknowledging unprocessed batch %s@%s", message.tp, message.offset
                )
                return False
            self._processed.discard(key)
        return bool(super().ack(message))

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust's gap filling, except on batched partitions (module docstring, "Committing")."""
        if tp.topic not in self.batched_topics:
            await super()._add_gap(tp, offset_from, offset_to)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: the end of the done range from the committed offset on.

        Faust's own account (acked offsets and gaps) is not used for batched
        partitions; its acked list is emptied here so that it does not grow.
        """
        if tp.topic not in self.batched_topics:
            return cast("int | None", super()._new_offset(tp))
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        done = self.done.get(tp)
        committed = self._start(tp)
        if done is None or committed is None:
            return None
        reached = done.advance(committed)
        return reached if reached > committed else None

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._forget(set(revoked))
        await super().on_partitions_revoked(revoked)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return TrueEndConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's ``getmany``, one message per batch, holding batches during a rebalance.

        Faust resumes stream partitions *before* it seeks them to their committed
        offsets after a table recovery, and the flow control it resumes at the very
        end clears every agent's queue (``FlowControlEvent.resume``). A batch
        fetched in between was queued, cleared, never processed nor acked, while
        the consumer had moved past it; a later batch's ack then committed over it
        (seen: a partition's whole third part missing after a restart). So while
        the app is rebalancing no batch is handed on, and once it is done every
        stream partition goes back to its committed offset before the next fetch.
        The same holds for every other batch dropped here after aiokafka moved past
        it, and nothing fetched after a dropped batch goes on before that seek
        either: a fetch under way when the rebalance ended once handed on the batch
        *after* the dropped one, its processor's offset moved past the drop, and the
        re-read records were skipped as applied (seen: a source partition's records
        134..~299 never counted, after a SIGKILL and restart). Re-reading is
        harmless: processors skip offsets they applied, the merge stage is idempotent.
        """
        if self.reseek and self.flow_active and not self.app.rebalancing:
            self.reseek = False
            await self.perform_seek()
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            await self.perform_seek()
            return
        batched = self.batched_topics
        for tp, tp_records in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                self.reseek = True
                break
            if not tp_records:
                continue
            active = (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            )
            if tp.topic in batched and (not active or self.reseek or self.app.rebalancing):
                # aiokafka has moved past these records: they are read again after the
                # seek, and so is every later batch (the processors skip offsets they
                # applied, so a batch after a dropped one would make the drop final)
                self.reseek = True
                continue
            if not active:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if tp.topic in batched:
                yield tp, self._batch_message(tp, tp_records)
            else:
                for record in tp_records:
                    yield tp, self._to_message(tp, record)

    def _batch_message(self, tp: TP, tp_records: list[Any]) -> Message:
        message = self._to_message(tp, tp_records[-1])
        message.key = None
        message.value = cast(bytes, tp_records)  # aiokafka's records: InputRecord
        # the offsets this batch accounts for: from just after the previous batch handed on
        # for its partition, or where it was sought to (offsets the fetch skipped, e.g.
        # transaction markers, included) to its end
        first = min(tp_records[0].offset, self._next.get(tp, tp_records[0].offset))
        self._covers[(tp, message.offset)] = first
        self._next[tp] = message.offset + 1
        return message


class DoneRanges:
    """Disjoint ranges of processed offsets of one partition, merged as they touch.

    Batches are processed in order, so this is one range almost always; a batch
    the stream skipped leaves a hole until it is read again.
    """

    __slots__ = ("ranges",)

    def __init__(self) -> None:
        #: sorted, disjoint, non-adjacent inclusive ranges ``[first, last]``
        self.ranges: list[list[int]] = []

    def add(self, first: int, last: int) -> None:
        """Mark ``first..last`` (inclusive) as processed."""
        kept: list[list[int]] = []
        for lo, hi in self.ranges:
            if hi + 1 < first or last + 1 < lo:
                kept.append([lo, hi])
            else:  # overlapping or adjacent: merge
                first, last = min(first, lo), max(last, hi)
        kept.append([first, last])
        kept.sort()
        self.ranges = kept

    def advance(self, position: int) -> int:
        """The first offset not processed from ``position`` on; forgets what lies below it."""
        for lo, hi in self.ranges:
            if lo > position:
                break
            position = max(position, hi + 1)
        self.ranges = [r for r in self.ranges if r[1] >= position]
        return position


class BatchingTransport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`BatchingConsumer`."""

    Consumer: ClassVar[type[faust_aiokafka.Consumer]] = BatchingConsumer


async def sleep_forever() -> None:  # pragma: no cover - used by the CLI's idle loops
    """Await forever without blocking the loop (for commands that run until Ctrl-C)."""
    await asyncio.Event().wait()
