"""Kafka v2 record batches as a producer writes them, built by aiokafka's own code (for
the tests of what the worker's fetch makes of them)."""

from __future__ import annotations

from aiokafka.record.default_records import DefaultRecordBatchBuilder


def batch_builder() -> DefaultRecordBatchBuilder:
    """An empty v2 batch: uncompressed, not transactional, up to 1 MiB."""
    return DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
