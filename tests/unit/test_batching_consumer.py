"""The batching consumer never hands on a batch that Faust would then drop unseen.

Faust resumes stream partitions before it seeks them to their committed offsets
after a table recovery, and resuming flow control at the end of the rebalance
clears every agent's queue: a batch fetched in between was lost while the
consumer had moved past it (``streams.transport.BatchingConsumer.getmany``).
The consumer here is the worker's real one; only its fetch is replaced.
"""

from __future__ import annotations

import tempfile
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.types import TP

from agents.pipeline import register
from streams.app import create_app
from streams.settings import load_settings


def _consumer() -> tuple[Any, Any]:
    settings = load_settings(env={"CXPULSE_STORE_DATA_DIR": tempfile.mkdtemp()})
    app: Any = create_app(settings, "kafka://127.0.0.1:9", embedded=True)
    register(app, settings)
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


async def test_outside_a_rebalance_batches_go_on_without_a_seek() -> None:
    _, consumer = _consumer()
    tp = TP("cxpulse.partials", 0)
    calls: list[str] = []
    delivered = await _drain(consumer, {tp: _records(tp, 0, 9)}, calls)
    assert calls == ["fetch"]
    assert [m.offset for m in delivered] == [9]
