"""Stock faust-streaming: NPS counts per channel and minute, one table write per event.

As the Faust docs show it: an ``App`` (memory store, consumer group from the
earliest offset), a JSON topic, one agent iterating its stream event by event,
and a ``Table`` (``default=int``) keyed by ``channel|minute|category`` whose
count is incremented once per nps answer (``table[key] += 1``: a changelog
record each). No ``group_by``: one worker owns every partition, so the table it
writes from each answer's own partition holds whole counts (a repartition would
only add cost). Apart from the consumer group, the broker address and short
session timeouts for the embedded broker (it waits half the session timeout
before it completes a join), every setting is Faust's default. Once it has
counted every answer the app writes its counts and stops itself.
"""

from __future__ import annotations

import os
import signal
import tempfile
from typing import Any

import faust
from peerlib import MINUTE_MS, Clock, parse_args, write_result

CATEGORY = ("p", "pa", "d")


def build(args: Any, datadir: str) -> faust.App:
    clock = Clock()
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=datadir,
        topic_partitions=args.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        web_enabled=False,
    )
    topic = app.topic(args.topic, value_serializer="json")
    counts = app.Table("nps_counts", default=int, partitions=args.partitions)

    @app.agent(topic)
    async def count(stream: faust.StreamT[dict[str, Any]]) -> None:
        async for ev in stream:
            clock.first()
            if ev["type"] != "answer" or ev["question"] != "nps":
                continue
            s = ev["score"]
            cat = CATEGORY[0 if s >= 9 else 1 if s >= 7 else 2]
            counts[f"{ev['channel']}|{ev['ts'] // MINUTE_MS}|{cat}"] += 1
            clock.answers += 1
            if clock.answers == args.events:
                clock.last()
                acc: dict[tuple[str, int], list[int]] = {}
                for key, n in counts.items():
                    channel, minute, c = key.split("|")
                    acc.setdefault((channel, int(minute)), [0, 0, 0])[CATEGORY.index(c)] = n
                write_result(args.out, "faust", clock, ((c, m, *v) for (c, m), v in acc.items()))
                os.kill(os.getpid(), signal.SIGTERM)

    return app


def main() -> None:
    args = parse_args(__doc__ or "")
    with tempfile.TemporaryDirectory(prefix="faust-data-") as datadir:
        app = build(args, datadir)
        worker = faust.Worker(app, loglevel="WARNING")
        worker.execute_from_commandline()


if __name__ == "__main__":
    main()
