"""Batched topics' records reach the processors as aiokafka decodes them, others as usual.

aiokafka's fetcher copies every record into a ``ConsumerRecord``; for the batched
topics the worker skips that copy (``cxpulse.agents.kafka.transport``, "Records as
aiokafka decodes them"). The record batches here are real Kafka v2 record batches,
built and decoded by aiokafka's own code.
"""

from __future__ import annotations

from typing import Any

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.types import TP

from cxpulse.agents.kafka.transport import consumer_record, raw_records_for
from cxpulse.schemas.deadletter import dead_letter
from tests.record_batches import batch_builder

RECORDS = [
    (0, b"k0", b'{"type":"answer"}', []),
    (1, None, b"not json", [("trace", b"\x00\x01")]),
    (2, b"k2", None, []),
]


def _fetched(topic: str, deserializer: Any = None) -> list[Any]:
    builder = batch_builder()
    for offset, key, value, headers in RECORDS:
        builder.append(
            offset, timestamp=1_700_000_000_000 + offset, key=key, value=value, headers=headers
        )
    records = MemoryRecords(bytes(builder.build()))
    tp = TopicPartition(topic, 3)
    # as aiokafka's Fetcher makes them: (tp, records, aborted, fetch offset, key and
    # value deserializers, check_crcs, isolation level)
    return list(PartitionRecords(tp, records, [], 0, deserializer, deserializer, True, 0))


def test_a_batched_topics_records_are_handed_over_without_a_copy() -> None:
    raw_records_for({"cx.raw.test"})
    fetched = _fetched("cx.raw.test")
    assert not any(isinstance(r, ConsumerRecord) for r in fetched)
    got = [(r.offset, r.key, r.value, list(r.headers)) for r in fetched]
    assert got == [(o, k, v, h) for o, k, v, h in RECORDS]
    assert [r.timestamp for r in fetched] == [1_700_000_000_000 + o for o, *_ in RECORDS]


def test_other_topics_still_get_consumer_records() -> None:
    raw_records_for({"cx.raw.test"})
    fetched = _fetched("cx.some.changelog")
    assert all(isinstance(r, ConsumerRecord) for r in fetched)
    assert [r.value for r in fetched] == [v for _, _, v, _ in RECORDS]


def test_with_a_deserializer_the_records_are_deserialized_as_before() -> None:
    raw_records_for({"cx.raw.test"})
    fetched = _fetched("cx.raw.test", deserializer=lambda b: None if b is None else b.upper())
    assert all(isinstance(r, ConsumerRecord) for r in fetched)
    assert fetched[0].value == b'{"TYPE":"ANSWER"}'


def test_a_raw_record_becomes_the_consumer_record_aiokafka_would_have_built() -> None:
    raw_records_for({"cx.raw.test"})
    raw = _fetched("cx.raw.test")
    tp = TP("cx.raw.test", 3)
    for record in raw:
        built = consumer_record(tp, record)
        assert isinstance(built, ConsumerRecord)
        assert (built.topic, built.partition, built.offset) == ("cx.raw.test", 3, record.offset)
        assert built.serialized_key_size == (-1 if record.key is None else len(record.key))
        assert built.serialized_value_size == (-1 if record.value is None else len(record.value))
        assert built.headers == tuple(record.headers)
        assert built.timestamp == record.timestamp
    already = consumer_record(tp, built)
    assert already is built


def test_a_dead_letter_keeps_a_raw_records_timestamp_and_headers() -> None:
    raw_records_for({"cx.raw.test"})
    record = _fetched("cx.raw.test")[1]
    letter = dead_letter(
        record, topic="cx.raw.test", partition=3, reason="malformed_json", error="x", at_ms=5
    )
    assert letter.headers == (("trace", b"\x00\x01"),)
    assert letter.timestamp_ms == 1_700_000_000_001
