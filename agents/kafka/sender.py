"""Producing a batch's records as one Kafka record batch per partition.

A worker produces several records per input batch for every few input events
(changelog writes, snapshots, KPI records). ``AIOKafkaProducer.send`` per record
cost ~15 % of a worker's CPU on the survey benchmark (py-spy,
``benchmarks/profile.py``): a future, a partition lookup and an accumulator
append each. aiokafka's supported batch API (``create_batch`` /
``send_batch``) takes a filled record batch instead, with one delivery future
for all of it. Records keep their order within a partition (aiokafka queues a
partition's batches in order), and keyed records without a partition go where
``send`` would put them (the producer's partitioner, cached per key: KPI and
alert keys repeat): the partitions come from the public ``partitions_for`` and the
choice from aiokafka's ``DefaultPartitioner``, the producer's own when none is
configured (Faust configures none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from cxpulse.schemas.input import Headers

#: topic, key, value, partition (``None``: by key, as the producer's partitioner decides)
Out = tuple[str, bytes | None, bytes | None, int | None]
#: the same, plus the record's timestamp (epoch ms; ``None``: now) and headers: a dead
#: letter carries its source record's (:mod:`cxpulse.schemas.deadletter`)
OutWithMeta = tuple[str, bytes | None, bytes | None, int | None, int | None, Headers]

#: At most this many keys per topic in the partition cache (bounded by the series count).
_CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One record batch on its way: done when the broker acknowledged all of it."""

    future: asyncio.Future[Any]
    topic: str
    partition: int
    records: int

    def last_offset(self) -> int | None:
        """The offset of the batch's last record, once delivered (None without acks)."""
        metadata = self.future.result()
        return None if metadata is None else int(metadata.offset) + self.records - 1


class BatchSender:
    """Sends records through an ``AIOKafkaProducer`` as whole batches (module docstring)."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self._partitions: dict[str, dict[bytes, int]] = {}
        self._partitioner = DefaultPartitioner()

    async def _partition_of(self, topic: str, key: bytes | None, value: bytes | None) -> int:
        # waits for the topic's metadata, as ``send`` does
        partitions = sorted(await self._producer.partitions_for(topic))
        if key is None:  # the partitioner picks any partition
            return int(self._partitioner(None, partitions, partitions))
        cache = self._partitions.setdefault(topic, {})
        partition = cache.get(key)
        if partition is None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            partition = cache[key] = int(self._partitioner(key, partitions, partitions))
        return partition

    async def send(self, records: Iterable[Out | OutWithMeta]) -> list[Delivery]:
        """Queue ``records``; their deliveries (one per record batch) to await.

        A record without a timestamp gets the producer's clock; one with (a dead
        letter) keeps its own, and its headers.
        """
        by_tp: dict[tuple[str, int], list[Out | OutWithMeta]] = {}
        cached = self._partitions
        for rec in records:
            if len(rec) == 4:
                topic, key, value, partition = rec
            else:
                topic, key, value, partition, _, _ = rec
            if partition is None:
                # a cache hit needs no coroutine: this runs once per KPI record
                partition = cached.get(topic, {}).get(key) if key is not None else None
                if partition is None:
                    partition = await self._partition_of(topic, key, value)
            by_tp.setdefault((topic, partition), []).append(rec)
        producer = self._producer
        deliveries: list[Delivery] = []
        for (topic, partition), group in by_tp.items():
            batch = producer.create_batch()
            for rec in group:
                if len(rec) == 4:
                    _, key, value, _ = rec
                    timestamp = headers = None
                else:
                    # aiokafka's compiled builder takes headers as a list only (None: none)
                    _, key, value, _, timestamp, meta = rec
                    headers = list(meta)
                if batch.append(key=key, value=value, timestamp=timestamp, headers=headers) is None:
                    if batch.record_count():
                        deliveries.append(await self._submit(batch, topic, partition))
                        batch = producer.create_batch()
                    if (
                        batch.append(key=key, value=value, timestamp=timestamp, headers=headers)
                        is None
                    ):
                        raise ValueError(f"a record for {topic} is larger than a whole batch")
            if batch.record_count():
                deliveries.append(await self._submit(batch, topic, partition))
        return deliveries

    async def _submit(self, batch: Any, topic: str, partition: int) -> Delivery:
        batch.close()  # complete: the producer's own sends start a batch of their own
        future = await self._producer.send_batch(batch, topic, partition=partition)
        return Delivery(future, topic, partition, batch.record_count())


def app_producer(app: Any) -> Any:
    """The aiokafka producer inside a started Faust app (a private attribute: compat.py)."""
    producer = app.producer._producer
    if producer is None:
        raise RuntimeError("the app's producer is not started")
    return producer


def app_client(app: Any) -> Any:
    """The aiokafka client of a Faust app's producer, or None before it started."""
    producer = app.producer._producer
    return None if producer is None else producer.client
