"""Bytewax: NPS counts per channel and minute with ``fold_window`` on an event clock.

As the Bytewax docs show it: ``KafkaSource`` (not tailing: the dataflow ends at
the end of the topic), a JSON decode (``orjson``) in ``map``, ``filter`` to the
nps answers, ``key_on`` the channel, ``fold_window`` with an ``EventClock`` on the
answer's ``ts`` and a ``TumblingWindower`` of one minute aligned to the epoch (so
the window id is the minute), and a sink collecting the closed windows. Run by
``bytewax.testing.run_main``: one worker, one process. The clock waits
``--lateness-s`` of event time for stragglers: the source merges the partitions
into one stream per key, so it must cover how far one partition's batch runs
ahead of another's, not only the disorder within a partition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.connectors.kafka import KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.outputs import DynamicSink, StatelessSinkPartition
from bytewax.testing import run_main
from peerlib import Clock, category, parse_args, write_result

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLOCK = Clock()
#: (channel, minute) -> [promoters, passives, detractors], from the closed windows
RESULTS: dict[tuple[str, int], list[int]] = {}


class _Collect(StatelessSinkPartition[Any]):
    def write_batch(self, items: list[Any]) -> None:
        for channel, (minute, acc) in items:
            RESULTS[(channel, minute)] = acc
        CLOCK.last()


class CollectSink(DynamicSink[Any]):
    """Closed windows into :data:`RESULTS`."""

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Collect:
        return _Collect()


def decode(msg: Any) -> dict[str, Any]:
    CLOCK.first()
    return orjson.loads(msg.value)


def is_nps_answer(ev: dict[str, Any]) -> bool:
    if ev["type"] == "answer" and ev["question"] == "nps":
        CLOCK.answers += 1
        return True
    return False


def event_time(ev: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(ev["ts"] / 1000, tz=UTC)


def fold(acc: list[int], ev: dict[str, Any]) -> list[int]:
    acc[category(ev["score"])] += 1
    return acc


def merge(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def dataflow(bootstrap: str, topic: str, lateness_s: float) -> Dataflow:
    flow = Dataflow("nps_by_channel_minute")
    msgs = op.input("kafka", flow, KafkaSource([bootstrap], [topic], tail=False))
    events = op.map("decode", msgs, decode)
    answers = op.filter("nps_answers", events, is_nps_answer)
    keyed = op.key_on("by_channel", answers, lambda ev: ev["channel"])
    clock = EventClock(event_time, wait_for_system_duration=timedelta(seconds=lateness_s))
    windower = TumblingWindower(length=timedelta(minutes=1), align_to=EPOCH)
    windows = fold_window("nps_per_minute", keyed, clock, windower, lambda: [0, 0, 0], fold, merge)
    op.output("collect", windows.down, CollectSink())
    return flow


def main() -> None:
    args = parse_args(__doc__ or "")
    run_main(dataflow(args.bootstrap, args.topic, args.lateness_s))
    rows = ((c, m, *acc) for (c, m), acc in RESULTS.items())
    write_result(args.out, "bytewax", CLOCK, rows)


if __name__ == "__main__":
    main()
