"""A Faust transport that hands whole fetched batches to agents, and finds true end offsets.

Why batches: a stock Faust agent costs ~200 µs of framework machinery per Kafka
record; cxpulse aggregates per batch anyway, so for the topics in
:attr:`BatchingConsumer.batched_topics` this consumer yields *one* Faust message
per fetched (topic, partition) batch: its ``value`` is the list of aiokafka records
(:class:`~cxpulse.schemas.input.InputRecord`), its ``offset`` the batch's last
offset. Faust still does everything else (group membership, rebalancing, commits,
table changelogs and recovery, flow control); other topics (changelogs during
recovery) stay one message per record.

What :class:`BatchingConsumer` guarantees on batched topics:

* Acknowledging. A batch is acked only after its agent declared it
  :meth:`~BatchingConsumer.processed` (its effects flushed to the broker).
  Faust's stream iterator acks every message it takes, including the ones it
  skips around a rebalance and the one an agent was handling when it failed;
  with gap filling such an ack would commit a batch never applied. Anything not
  declared processed is read again, which the processors make harmless.
* Committing. The consumer keeps its own account of processed offsets per
  partition (:class:`DoneRanges`): a processed batch marks done every offset from
  just after the previous batch handed on (or from where the partition was sought
  to, so offsets the fetch skips, e.g. transaction markers, count too) through its
  last; the committable offset is the end of the done range that starts at the
  committed offset (:meth:`BatchingConsumer._new_offset`). Faust's gap filling
  is not used there: faust-streaming 0.15.3 ``Consumer._add_gap`` counts the
  offset after each gap, so with batches each commit moves past one batch only
  and commits fall behind without bound (faust-streaming/faust#606,
  robinhood/faust#625); it also counts a skipped batch as done once a later one
  is acked. A skipped batch leaves a hole, and the partition is read again from
  the committed offset (:attr:`BatchingConsumer.reseek`), which fills it.
* Rewinding. After a rebalance every batched partition resumes at its committed
  offset, or at its first offset when it has none
  (:meth:`BatchingConsumer.perform_seek`); batches fetched during the rebalance
  are held back and read again (:meth:`BatchingConsumer.getmany`).

Records as aiokafka decodes them: for batched topics the fetcher hands over its own
record objects (``DefaultRecord``: offset, key, value, timestamp, headers, what an
:class:`~cxpulse.schemas.input.InputRecord` is) instead of building a
``ConsumerRecord`` for each (:func:`raw_records_for`). That object cost ~0.5 µs per
record, ~7 % of a worker's CPU on the peers' answers; only a batch's last record
still becomes one, for the Faust message that stands for the batch. The fetcher's
per-record Python (a generator step, a method call and an append per record, in the
consumer thread, holding the lock the agents' thread waits for) is replaced for them
by C iteration over each record batch (:class:`RawPartitionRecords`): 0.41 → 0.21 µs
per record of the consumer thread on the peers' answers, same records, same positions.

True ends: a broker may answer ``ListOffsets(latest)`` with an offset below the
true end (the embedded broker, Tansu, can) while fetch responses carry the right
high-water mark. Faust's table recovery reads changelogs up to ``highwaters()``,
so :meth:`TrueEndConsumerThread._highwaters` fetches at the reported end with a
short-lived assign-only consumer and takes the larger of the two: a table is
never recovered short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from itertools import chain, islice
from typing import Any, ClassVar, cast

from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult, PartitionRecords
from aiokafka.errors import CorruptRecordException, IllegalStateError
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.tuples import Message

log = logging.getLogger("cxpulse")

#: topics whose fetched records are handed over as aiokafka decodes them (module docstring)
_RAW_TOPICS: set[str] = set()
_partition_records_init = PartitionRecords.__init__


def _as_decoded(tp: Any, record: Any) -> Any:
    """A raw topic's record as it is (the stand-in for ``_consumer_record``)."""
    return record


class RawPartitionRecords(PartitionRecords):
    """A raw topic's fetched records, iterated by C code a record batch at a time.

    aiokafka 0.14.0's ``PartitionRecords`` yields each record from a Python
    generator (``_unpack_records``) through a Python ``__next__``, and
    ``FetchResult.getall`` appends them one by one. Here the same per-batch
    decisions (CRC check, control batches skipped, records before the fetch offset
    dropped) are taken once per batch, and the records are chained from the
    decoded batch lists (``itertools.chain``); :func:`_getall` takes them with
    ``islice``. ``next_fetch_offset`` is where the base class leaves it after the
    same records: past the batch once a batch is used up, past the last record
    handed over otherwise. Only under ``read_uncommitted`` (Faust's default); with
    ``read_committed`` the base class's aborted-transaction handling is used as is.
    """

    def __next__(self) -> Any:
        record = super().__next__()
        self.next_fetch_offset = record.offset + 1
        return record

    def _unpack_batches(self) -> Iterator[list[Any]]:
        records = self._records
        while records.has_next():
            batch = records.next_batch()
            if self._check_crcs and not batch.validate_crc():
                raise CorruptRecordException(f"Invalid CRC - {self._tp}")
            if batch.is_control_batch:
                self.next_fetch_offset = batch.next_offset
                continue
            decoded = list(batch)
            start = self.next_fetch_offset
            if decoded and decoded[0].offset < start:  # a batch begun before the fetch offset
                decoded = [record for record in decoded if record.offset >= start]
            yield decoded
            self.next_fetch_offset = batch.next_offset


def _init(self: PartitionRecords, tp: Any, *args: Any, **kwargs: Any) -> None:
    """aiokafka 0.14.0 ``PartitionRecords.__init__``, then, for a raw topic's fetched
    batch, its per-record copy (``_consumer_record``) replaced by the record itself and,
    under ``read_uncommitted``, its iteration by :class:`RawPartitionRecords`: decided
    once per fetched batch, not per record.

    Raw only without deserializers (Faust's consumer has none): with one, the record's
    bytes would not be what the deserializer makes of them.
    """
    _partition_records_init(self, tp, *args, **kwargs)
    if (
        tp.topic in _RAW_TOPICS
        and self._key_deserializer is None
        and self._value_deserializer is None
    ):
        self._consumer_record = _as_decoded
        if self._isolation_level != READ_COMMITTED:
            self.__class__ = RawPartitionRecords
            self._records_iterator = chain.from_iterable(self._unpack_batches())


_init.__wrapped__ = _partition_records_init  # type: ignore[attr-defined]  # compat.py reads its source
PartitionRecords.__init__ = _init
_fetch_result_getall = FetchResult.getall


def _getall(self: FetchResult, max_records: int | None = None) -> list[Any]:
    """aiokafka 0.14.0 ``FetchResult.getall``, its records taken by ``islice`` for
    :class:`RawPartitionRecords` (the same records, and the same position after them)."""
    records = self._partition_records
    if type(records) is not RawPartitionRecords:
        return cast("list[Any]", _fetch_result_getall(self, max_records))
    if not self.check_assignment(self._topic_partition):
        return []
    limit = None if max_records is None else max(max_records, 1)  # the base takes one at 0
    taken = list(islice(records._records_iterator, limit))
    if limit is not None and len(taken) >= limit:
        records.next_fetch_offset = taken[-1].offset + 1
        self._update_position()
    else:
        self._update_position()
        self._partition_records = None
    return taken


_getall.__wrapped__ = _fetch_result_getall  # type: ignore[attr-defined]
FetchResult.getall = _getall


def raw_records_for(topics: Iterable[str]) -> None:
    """Hand the records of ``topics`` over as aiokafka decodes them (module docstring)."""
    _RAW_TOPICS.update(topics)


def consumer_record(tp: TP, record: Any) -> ConsumerRecord[Any, Any]:
    """A ``ConsumerRecord`` of a raw record (what Faust's messages are built from)."""
    if isinstance(record, ConsumerRecord):
        return record
    key, value = record.key, record.value
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        record.offset,
        record.timestamp,
        record.timestamp_type,
        key,
        value,
        record.checksum,
        -1 if key is None else len(key),
        -1 if value is None else len(value),
        tuple(record.headers),
    )


class TrueEndConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Consumer thread whose ``highwaters`` do not trust a low ``ListOffsets`` answer,
    and whose fetches wait at most the app's ``fetch_max_wait_ms`` when it has one
    (:class:`~cxpulse.agents.worker.app.CxApp`: the embedded broker's)."""

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait = getattr(self.app, "fetch_max_wait_ms", None)
        if wait is not None:
            # faust-streaming 0.15.3 passes a fixed 1,500 ms; aiokafka 0.14.0 hands this
            # attribute to the fetcher it creates in start()
            consumer._fetch_max_wait_ms = wait
        return cast(AIOKafkaConsumer, consumer)

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: topic names delivered as batches: the app's (set by ``create_app``), per app
        self.batched_topics: frozenset[str] = frozenset(getattr(self.app, "batched_topics", ()))
        raw_records_for(self.batched_topics)
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

    def on_buffer_full(self, tp: TP) -> None:
        """Keep fetching ``tp`` when its agent's queue is under pressure.

        Faust would take the partition out of the fetch until the queue drains;
        with every partition out, faust-streaming 0.15.3's fetch loop sleeps a
        full second (``Consumer._wait_next_records``), and with some out, a
        fetch waits up to its 1 s timeout for the others while the resumed ones'
        records sit buffered. A worker draining a backlog stalled that way for
        0.7-1.5 s near its end in about half the runs. Without it the queue's
        bound (``stream_buffer_maxsize``) still holds: a full queue blocks the
        delivery of the next batch to it, so the fetch loop waits for the agent,
        and what the broker holds meanwhile comes as one batch.
        """

    async def perform_seek(self) -> None:
        """Seek to the committed offsets and, unlike Faust, rewind partitions without one.

        While tables recover, Faust fetches records of its stream partitions and
        drops them (they are not active yet), then seeks every partition back to
        its committed offset. aiokafka's ``seek_to_committed`` skips partitions
        with no commit (or a commit of 0), so their dropped records would be lost:
        a worker killed before its first commit would lose the head of each such
        partition on restart. They go back to their first offset (the
        ``earliest`` reset policy); processing them again is harmless.

        A rebalance can take a partition away while the seek awaits its committed
        offsets (aiokafka then raises ``IllegalStateError``: "No current assignment
        for partition"; faust-streaming#54, #264). That is not a failure: nothing is
        handed on until the seek is redone once the rebalance is over
        (``reseek``, :meth:`getmany`).
        """
        try:
            await super().perform_seek()
        except IllegalStateError as exc:
            self.reseek = True
            log.info("cxpulse: a rebalance interrupted the seek (%s); seeking again after it", exc)
            return
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
        fetched in between would be queued, cleared, never processed nor acked,
        while the consumer moved past it, and a later batch's ack would commit over
        it. So while the app is rebalancing no batch is handed on, and once it is
        done every stream partition goes back to its committed offset before the
        next fetch. The same holds for every other batch dropped here after
        aiokafka moved past it, and nothing fetched after a dropped batch goes on
        before that seek either: handing on the batch *after* a dropped one would
        move its processor's offset past the drop, and the re-read records would be
        skipped as applied. Re-reading is harmless: processors skip offsets they
        applied, the merge stage is idempotent.
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
        message = self._to_message(tp, consumer_record(tp, tp_records[-1]))
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
