"""Quix Streams: NPS counts per channel and minute with ``group_by`` + ``tumbling_window``.

As the Quix Streams docs show it: an ``Application`` (consumer group, from the
earliest offset, its default RocksDB state with changelog topics), a JSON topic
whose timestamp extractor is the answer's ``ts``, ``group_by("channel")`` (which
repartitions through an internal topic), a one-minute ``tumbling_window`` with
``--lateness-s`` of grace, a custom ``Aggregator`` counting the three NPS
categories, and ``.current()``: every update of a window comes out, and the last
one of each window is its count. (``.final()`` emits a window only when a later
record of the same key passes its grace; in a repartitioned backlog the closing
heartbeat of one input partition arrives before the answers of another, so it
closes windows still to be filled.) The app stops once it has counted every
answer after the repartition. The grace must cover how far one input partition
runs ahead of another in the repartitioned stream, not only the disorder within
a partition.
"""

from __future__ import annotations

import tempfile
from typing import Any

from peerlib import MINUTE_MS, Clock, category, parse_args, write_result
from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Aggregator

CLOCK = Clock()
RESULTS: dict[tuple[str, int], list[int]] = {}


class NpsCounts(Aggregator):
    """``[promoters, passives, detractors]`` of a window's nps answers."""

    def initialize(self) -> list[int]:
        return [0, 0, 0]

    def agg(self, old: list[int], new: Any, timestamp: int) -> list[int]:
        old[category(new["score"])] += 1
        return old

    def result(self, value: list[int]) -> list[int]:
        return value


def main() -> None:
    args = parse_args(__doc__ or "")
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            state_dir=state_dir,
        )
        topic = app.topic(
            args.topic,
            value_deserializer="json",
            timestamp_extractor=lambda value, headers, ts, ts_type: int(value["ts"]),
        )
        # The embedded broker's DescribeConfigs has no ``retention.ms``, which
        # ``group_by`` copies to its repartition topic: give it Kafka's default.
        topic.broker_config.extra_config.setdefault("retention.ms", str(7 * 86_400_000))
        sdf = app.dataframe(topic)
        sdf = sdf.update(lambda value: CLOCK.first())
        sdf = sdf.filter(lambda value: value["type"] == "answer" and value["question"] == "nps")
        sdf = sdf.group_by("channel")

        def after_repartition(value: dict[str, Any]) -> None:
            CLOCK.answers += 1
            if CLOCK.answers == args.events:
                app.stop()  # after this record: its window update still comes out

        sdf = sdf.update(after_repartition)
        sdf = (
            sdf.tumbling_window(duration_ms=MINUTE_MS, grace_ms=int(args.lateness_s * 1000))
            .agg(nps=NpsCounts())
            .current()
        )

        def collect(value: dict[str, Any], key: Any, timestamp: int, headers: Any) -> None:
            RESULTS[(str(key), value["start"] // MINUTE_MS)] = value["nps"]
            CLOCK.last()

        sdf = sdf.update(collect, metadata=True)
        app.run(sdf)
    if CLOCK.t_last is None:
        CLOCK.last()
    rows = ((c, m, *acc) for (c, m), acc in RESULTS.items())
    write_result(args.out, "quix", CLOCK, rows)


if __name__ == "__main__":
    main()
