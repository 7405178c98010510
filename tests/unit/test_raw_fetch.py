"""A batched topic's fetch hands over what aiokafka's own per-record path would.

``RawPartitionRecords`` and its ``getall`` (``cxpulse.agents.kafka.transport``,
"Records as aiokafka decodes them") iterate each record batch in C instead of one
generator step per record. Against aiokafka 0.14.0's own path (a topic that is not
batched, so ``ConsumerRecord`` copies), on real v2 record batches built by aiokafka:
the same records from every ``getall`` and ``getone``, the same consumed position
after each, the same corrupt-batch error at the same point, with offset gaps
(compaction), control batches, a fetch offset inside the first batch and any
``max_records``.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.errors import CorruptRecordException
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.agents.kafka.transport import RawPartitionRecords, raw_records_for
from tests.record_batches import batch_builder

RAW, COPIED = "cx.rawfetch.test", "cx.rawfetch.copied"
_ATTRIBUTES, _CRC = 21, 17  # byte offsets in a v2 record batch
_CONTROL = 0x20


@dataclass(frozen=True)
class Batch:
    deltas: list[int]  # each record's offset from the batch's base, increasing
    gap: int  # offsets missing before the batch (compaction)
    control: bool
    corrupt: bool


def _batch(base: int, b: Batch) -> bytes:
    builder = batch_builder()
    for d in b.deltas:
        offset = base + d
        builder.append(
            d,
            timestamp=1_700_000_000_000 + offset,
            key=None if offset % 3 == 0 else b"k%d" % offset,
            value=b'{"n":%d}' % offset,
            headers=[("h", b"%d" % offset)] if offset % 4 == 0 else [],
        )
    buf = builder.build()
    struct.pack_into(">q", buf, 0, base)
    if b.control:
        (attributes,) = struct.unpack_from(">h", buf, _ATTRIBUTES)
        struct.pack_into(">h", buf, _ATTRIBUTES, attributes | _CONTROL)
    struct.pack_into(">I", buf, _CRC, calc_crc32c(bytes(buf[_ATTRIBUTES:])))
    if b.corrupt:
        buf[-1] ^= 0xFF  # after the CRC was computed: the batch no longer matches it
    return bytes(buf)


def _records(batches: list[Batch]) -> tuple[bytes, int, int]:
    """The fetched bytes, the first batch's base offset and the offset after the last."""
    data, base, first = b"", 7, None
    for b in batches:
        base += b.gap
        first = base if first is None else first
        data += _batch(base, b)
        base += b.deltas[-1] + 1
    assert first is not None
    return data, first, base


def _as_tuple(r: Any) -> tuple[Any, ...]:
    return (r.offset, r.key, r.value, r.timestamp, tuple(r.headers))


def _replay(topic: str, data: bytes, fetch_offset: int, ops: list[int | None]) -> list[Any]:
    """What a fetcher's consumer sees: each step's records (or error) and position."""

    async def run() -> list[Any]:
        tp = TopicPartition(topic, 0)
        assignment = Assignment({tp})
        state = assignment.state_value(tp)
        state.seek(fetch_offset)
        records = PartitionRecords(tp, MemoryRecords(data), [], fetch_offset, None, None, True, 0)
        assert isinstance(records, RawPartitionRecords) == (topic == RAW)
        result = FetchResult(tp, assignment=assignment, partition_records=records, backoff=0)
        seen: list[Any] = []
        for op in ops:
            if not result.has_more():
                break  # the fetcher drops a used-up result (Fetcher.fetched_records)
            try:
                if op == 0:
                    one = result.getone()
                    got: Any = None if one is None else _as_tuple(one)
                else:
                    got = [_as_tuple(r) for r in result.getall(op)]
                    assert not any(isinstance(r, ConsumerRecord) for r in got)
            except CorruptRecordException:
                got = "corrupt"
            seen.append((got, state.position, result.has_more()))
        return seen

    return asyncio.run(run())


batches = st.lists(
    st.builds(
        Batch,
        deltas=st.lists(st.integers(0, 40), min_size=1, max_size=25, unique=True).map(sorted),
        gap=st.integers(0, 3),
        control=st.integers(0, 5).map(lambda n: n == 0),
        corrupt=st.integers(0, 15).map(lambda n: n == 0),
    ),
    min_size=1,
    max_size=6,
)
#: a step: 0 is ``getone()``, else ``getall(max_records)`` (None: all)
steps = st.lists(st.none() | st.integers(0, 60), min_size=1, max_size=12)


@settings(max_examples=400, deadline=None)
@given(batches=batches, into_first=st.integers(0, 45), ops=steps)
def test_the_batched_fetch_matches_aiokafkas_per_record_path(
    batches: list[Batch], into_first: int, ops: list[int | None]
) -> None:
    raw_records_for({RAW})
    data, first, end = _records(batches)
    fetch_offset = min(first + into_first, end)
    got = _replay(RAW, data, fetch_offset, ops)
    want = _replay(COPIED, data, fetch_offset, ops)
    assert got == want


def test_a_whole_fetch_in_one_getall_and_its_position() -> None:
    raw_records_for({RAW})
    data, first, end = _records(
        [
            Batch([0, 1, 2], 0, False, False),
            Batch([0, 2], 1, True, False),
            Batch([1, 5], 2, False, False),
        ]
    )
    (records, position, more), *_ = _replay(RAW, data, first + 1, [None])
    # the first batch from the fetch offset on, the control batch skipped, the gaps kept
    assert [r[0] for r in records] == [first + 1, first + 2, first + 10, first + 14]
    assert position == end and not more
