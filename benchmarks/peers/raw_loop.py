"""The physical limit: aiokafka ``getmany`` + ``orjson.loads`` + a dict, nothing else.

No group, no commits, no windows, no lateness: every record of every partition
read from the beginning, decoded, and counted into ``(channel, minute)``. What
any stream processor in Python does on top of this costs it more.
"""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from peerlib import MINUTE_MS, Clock, Counts, parse_args, write_result


async def count(bootstrap: str, topic: str, partitions: int, n: int, clock: Clock) -> Counts:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    counts: Counts = {}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            if batch:
                clock.first()
            for records in batch.values():
                for r in records:
                    ev = orjson.loads(r.value)
                    if ev["type"] != "answer" or ev["question"] != "nps":
                        continue
                    key = (ev["channel"], ev["ts"] // MINUTE_MS)
                    acc = counts.get(key)
                    if acc is None:
                        acc = counts[key] = [0, 0, 0]
                    s = ev["score"]
                    acc[0 if s >= 9 else 1 if s >= 7 else 2] += 1
                    seen += 1
        clock.answers = seen
        clock.last()
    finally:
        await consumer.stop()
    return counts


def main() -> None:
    args = parse_args(__doc__ or "")
    clock = Clock()
    counts = asyncio.run(count(args.bootstrap, args.topic, args.partitions, args.events, clock))
    write_result(args.out, "raw", clock, ((c, m, *v) for (c, m), v in counts.items()))


if __name__ == "__main__":
    main()
