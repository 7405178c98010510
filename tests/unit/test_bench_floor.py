"""The floor bench's plain loop counts what the contenders count, as Python and as C."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from benchmarks.floor import (
    HORIZON_MS,
    channel_counts,
    compiled_loop,
    decode_msgspec,
    partition_values,
)
from benchmarks.floor_loop import count_answers
from benchmarks.peers.workload import build
from cxpulse.schemas.event_types import SurveyEvent

Loop = Callable[[list[list[Any]], int], tuple[dict[tuple[int, str], list[int]], int]]


def _check(loop: Loop) -> None:
    workload = build(3_000, 1000.0, seed=7)
    decoded = decode_msgspec(partition_values(workload))
    counts, kept = loop(decoded, HORIZON_MS)
    assert kept == workload.answers
    assert channel_counts(counts) == workload.counts
    all_total = sum(c[3] for (_, label), c in counts.items() if label == "all")
    assert all_total == workload.answers
    # every batch delivered twice (a replay): the copies are dropped by the dedup test
    again, kept_again = loop([batch for batch in decoded for _ in (0, 1)], HORIZON_MS)
    assert (again, kept_again) == (counts, kept)
    # a second answer of a known response, a new event id: the answer counts (a
    # promoter), the response does not
    first = decoded[0][0]
    second = SurveyEvent(
        "other-id", "answer", first.ts, first.survey_id, first.response_id,
        first.customer_id, first.channel, "nps", 10,
    )  # fmt: skip
    more, kept_more = loop([*decoded, [second]], HORIZON_MS)
    assert kept_more == kept + 1
    minute = first.ts - first.ts % 60_000
    for label in ("all", f"channel={first.channel}"):
        before, after = counts[(minute, label)], more[(minute, label)]
        assert after == [before[0] + 1, *before[1:]]
    assert {k: v for k, v in more.items() if k[0] != minute} == {
        k: v for k, v in counts.items() if k[0] != minute
    }


def test_python_loop_counts_the_workload() -> None:
    _check(count_answers)


def test_compiled_loop_counts_the_workload() -> None:
    compiled = compiled_loop()
    if compiled is None:
        pytest.skip("Cython is not installed (a dev dependency: make install)")
    assert compiled.__file__ is not None and not compiled.__file__.endswith(".py")
    _check(compiled.count_answers)
