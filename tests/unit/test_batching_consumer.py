"""The batching consumer never hands on a batch that Faust would then drop unseen,
and commits exactly the offsets of the batches processed.

Faust resumes stream partitions before it seeks them to their committed offsets
after a table recovery, and resuming flow control at the end of the rebalance
clears every agent's queue: a batch fetched in between would be lost, the
consumer having moved past it (``cxpulse.agents.kafka.transport.BatchingConsumer.getmany``).
Committing: Faust's own account moves past one batch per commit and counts a
skipped batch as done once a later one is acked (``cxpulse.agents.kafka.transport``,
"Committing"). The consumer here is the worker's real one; only its fetch is
replaced, and a message's delivery is done as Faust's ``_drain_messages`` does it.
"""

from __future__ import annotations

import itertools
import tempfile
from types import SimpleNamespace
from typing import Any

from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord
from faust.types import TP
from hypothesis import given
from hypothesis import strategies as st

from cxpulse.agents.kafka.transport import DoneRanges
from cxpulse.agents.worker.agents import hold
from cxpulse.agents.worker.app import create_app
from cxpulse.agents.worker.pipeline import register
from cxpulse.streams.settings import load_settings

#: The apps' data dirs (never written: no worker runs), removed when the session ends.
_DATA = tempfile.TemporaryDirectory(prefix="cxpulse-test-")


def _consumer() -> tuple[Any, Any]:
    settings = load_settings(env={"CXPULSE_STORE_DATA_DIR": _DATA.name})
    app: Any = create_app(settings, "kafka://127.0.0.1:9", embedded=True)
    register(app, settings)
    # as once the worker's conductor subscribed: acks count on the input topics
    app.topics._acking_topics.update(app.consumer.batched_topics)
    return app, app.consumer


Fetched = dict[TP, list[ConsumerRecord[bytes, bytes]]]


def _records(tp: TP, first: int, last: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(tp.topic, tp.partition, o, 0, 0, None, b"{}", None, 0, 2, ())
        for o in range(first, last + 1)
    ]


async def _drain(
    consumer: Any, fetched: Fetched, calls: list[str], *, rebalance_ends: bool = False
) -> list[Any]:
    async def fetch(timeout: float) -> tuple[Fetched, None]:
        calls.append("fetch")
        if rebalance_ends:  # the rebalance ends while this fetch is under way
            consumer.app.rebalancing = False
        return fetched, None

    async def seek() -> None:
        calls.append("seek")

    consumer._wait_next_records = fetch
    consumer.perform_seek = seek
    consumer.app.monitor.track_tp_end_offset = lambda tp, offset: None
    consumer.highwater = lambda tp: None
    return [message async for _, message in consumer.getmany(timeout=0.1)]


async def test_batches_fetched_while_rebalancing_are_held_then_read_again() -> None:
    app, consumer = _consumer()
    tp = TP("cx.survey.events", 2)
    calls: list[str] = []
    app.rebalancing = True
    assert await _drain(consumer, {tp: _records(tp, 367, 493)}, calls) == []
    assert consumer.reseek
    app.rebalancing = False
    delivered = await _drain(consumer, {tp: _records(tp, 204, 493)}, calls)
    # back to the committed offsets before fetching again, then the batch goes on
    assert calls == ["fetch", "seek", "fetch"]
    assert [(m.tp, m.offset, len(m.value)) for m in delivered] == [(tp, 493, 290)]
    assert not consumer.reseek


async def test_nothing_fetched_after_a_dropped_batch_goes_on_before_the_seek() -> None:
    """Seen after a SIGKILL: batch 134..299 held in the rebalance, then 300..433 fetched
    as it ended went on; its processor moved to 433 and skipped 134..299 when re-read."""
    app, consumer = _consumer()
    tp = TP("cx.survey.events", 3)
    calls: list[str] = []
    app.rebalancing = True
    assert await _drain(consumer, {tp: _records(tp, 134, 299)}, calls) == []
    after = await _drain(consumer, {tp: _records(tp, 300, 433)}, calls, rebalance_ends=True)
    assert after == []  # not before the partition is back at its committed offset
    assert consumer.reseek
    again = await _drain(consumer, {tp: _records(tp, 134, 433)}, calls)
    assert calls == ["fetch", "fetch", "seek", "fetch"]
    assert [(m.offset, m.value[0].offset) for m in again] == [(433, 134)]


async def test_a_seek_a_rebalance_interrupts_is_redone_before_any_batch_goes_on() -> None:
    """aiokafka raises IllegalStateError ("No current assignment for partition") when a
    rebalance takes a partition away while the seek awaits its committed offsets: seen
    stopping a worker's fetcher as a restarted peer joined its group."""
    _, consumer = _consumer()

    async def taken_meanwhile() -> Any:
        raise IllegalStateError("No current assignment for partition TopicPartition('p', 0)")

    consumer.seek_to_committed = taken_meanwhile
    await consumer.perform_seek()  # the real one: no crash, the seek is owed
    assert consumer.reseek
    tp = TP("cx.survey.events", 1)
    calls: list[str] = []
    delivered = await _drain(consumer, {tp: _records(tp, 0, 9)}, calls)
    assert calls == ["seek", "fetch"]  # redone before the next fetch, outside the rebalance
    assert [m.offset for m in delivered] == [9]
    assert not consumer.reseek


async def test_outside_a_rebalance_batches_go_on_without_a_seek() -> None:
    _, consumer = _consumer()
    tp = TP("cxpulse.partials", 0)
    calls: list[str] = []
    delivered = await _drain(consumer, {tp: _records(tp, 0, 9)}, calls)
    assert calls == ["fetch"]
    assert [m.offset for m in delivered] == [9]


async def _read(consumer: Any, tp: TP, first: int, last: int) -> Any:
    """One batch message handed on, with the bookkeeping of Faust's ``_drain_messages``."""
    message = consumer._batch_message(tp, _records(tp, first, last))
    previous = consumer._read_offset[tp]
    if previous is not None and message.offset - previous > 1:
        await consumer._add_gap(tp, previous + 1, message.offset)
    consumer._read_offset[tp] = message.offset
    return message


def _done(consumer: Any, message: Any) -> None:
    """The agent declares the batch processed; Faust's stream then acks it."""
    consumer.processed(message)
    assert consumer.ack(message)


def _commit(consumer: Any, tp: TP) -> int | None:
    """What a commit would write for ``tp`` (and the bookkeeping after it)."""
    offset = consumer._new_offset(tp)
    if offset is not None and consumer._should_commit(tp, offset):
        consumer._committed_offset[tp] = offset
        return int(offset)
    return None


def _sought(consumer: Any, tp: TP, committed: int) -> None:
    """As after ``perform_seek``: the partition resumes at its committed offset."""
    consumer._committed_offset[tp] = committed
    consumer._read_offset[tp] = committed
    consumer._next[tp] = committed


async def test_one_commit_covers_every_batch_processed_since_the_last() -> None:
    # faust-streaming counted each batch's last offset twice (once acked, once in
    # the gap it recorded before the batch), so a commit moved past one batch only
    _, consumer = _consumer()
    tp = TP("cx.survey.events", 0)
    _sought(consumer, tp, 100)
    first = 100
    for size in [3, 1, 7, 2, 1, 1, 5] * 20:
        _done(consumer, await _read(consumer, tp, first, first + size - 1))
        first += size
    assert _commit(consumer, tp) == first
    assert not consumer._acked.get(tp) and not consumer._gap.get(tp), "nothing accumulates"
    assert consumer.done[tp].ranges == []


async def test_a_batch_acked_by_the_stream_before_its_delivery_is_committed_after_it() -> None:
    # an agent processes its next batch while one is delivered, so the stream acks
    # the batch it handed out before the delivery ends; the agent's hold turns that
    # ack into a dropped reference, and its own ack after the delivery counts
    _, consumer = _consumer()
    tp = TP("cx.survey.events", 2)
    _sought(consumer, tp, 100)
    message = await _read(consumer, tp, 100, 149)
    message.incref()  # as the conductor does for the agent's channel
    event: Any = SimpleNamespace(message=message, ack=lambda: message.ack(consumer))
    hold(event)
    assert not event.ack(), "the stream's ack only drops the hold"
    assert not consumer.reseek and _commit(consumer, tp) is None
    consumer.processed(message)  # the delivery ends
    assert event.ack(), "the agent's ack is the last one"
    assert not consumer.reseek
    assert _commit(consumer, tp) == 150, "the whole batch is committed"


async def test_without_the_hold_an_early_ack_looks_like_a_skipped_batch() -> None:
    # why the hold: the same early ack on a message nobody holds
    _, consumer = _consumer()
    tp = TP("cx.survey.events", 3)
    _sought(consumer, tp, 100)
    message = await _read(consumer, tp, 100, 149)
    message.incref()
    assert not message.ack(consumer) and consumer.reseek
    consumer.processed(message)
    assert _commit(consumer, tp) is None, "what the batch covered was forgotten"


async def test_a_skipped_batch_stops_the_commit_and_is_read_again() -> None:
    _, consumer = _consumer()
    tp = TP("cx.survey.events", 1)
    _sought(consumer, tp, 100)
    _done(consumer, await _read(consumer, tp, 100, 109))
    skipped = await _read(consumer, tp, 110, 119)
    assert not consumer.ack(skipped), "the stream skipped it: not acknowledged"
    assert consumer.reseek, "the partition is read again from the committed offset"
    _done(consumer, await _read(consumer, tp, 120, 129))
    # gap filling would have counted 110..118 as done, and 119 after a re-read
    assert _commit(consumer, tp) == 110
    assert _commit(consumer, tp) is None
    _sought(consumer, tp, 110)
    _done(consumer, await _read(consumer, tp, 110, 125))
    assert _commit(consumer, tp) == 130


async def test_offsets_the_fetch_did_not_return_count_as_done() -> None:
    # e.g. transaction markers: 106 and 107 hold no records, 112 neither
    _, consumer = _consumer()
    tp = TP("cx.cart.events", 2)
    _sought(consumer, tp, 104)
    _done(consumer, await _read(consumer, tp, 106, 109))  # 104 and 105 are markers too
    _done(consumer, await _read(consumer, tp, 111, 111))
    _done(consumer, await _read(consumer, tp, 113, 120))
    assert _commit(consumer, tp) == 121


async def test_batches_read_before_a_revocation_are_forgotten_with_it() -> None:
    _, consumer = _consumer()
    tp = TP("cx.ticket.events", 3)
    _sought(consumer, tp, 0)
    consumer._origin[tp] = 0
    pending = await _read(consumer, tp, 0, 9)
    _done(consumer, await _read(consumer, tp, 10, 19))
    await consumer.on_partitions_revoked({tp})
    assert tp not in consumer.done and tp not in consumer._next
    assert (tp, pending.offset) not in consumer._covers


def test_changelog_partitions_keep_fausts_own_account() -> None:
    _, consumer = _consumer()
    tp = TP("cx-survey-state-changelog", 0)
    assert tp.topic not in consumer.batched_topics
    assert consumer._new_offset(tp) is None  # nothing acked: Faust's answer


@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 8)), max_size=25),
    st.integers(0, 70),
)
def test_done_ranges_advance_to_the_first_offset_not_processed(
    batches: list[tuple[int, int]], position: int
) -> None:
    done = DoneRanges()
    processed: set[int] = set()
    for first, size in batches:
        done.add(first, first + size)
        processed.update(range(first, first + size + 1))
    ranges = list(done.ranges)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges)), "disjoint"
    expected = position
    while expected in processed:
        expected += 1
    assert done.advance(position) == expected
    assert all(hi >= expected for _, hi in done.ranges), "what lies below is forgotten"
