"""Bounded memory over a long run: a week of traffic, flat state.

A real worker replays seven days of mixed traffic one day at a time
(:mod:`benchmarks.long_run`); with windows of at most a day, a one-day cart
recovery window, tickets forgotten a day after their last event and the 24 h
dedup horizon, everything the worker keeps rolls
within two days, so every kind of state (entities, buckets, dedup ids, merge
buckets) must stop growing: a leak grows with the days and fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.long_run import run
from cxpulse.agents.tools.broker import EmbeddedBroker
from tests.integration.harness import worker_env

pytestmark = pytest.mark.integration


def test_a_week_of_traffic_leaves_the_state_flat(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    env = worker_env(
        unique,
        broker.url,
        CXPULSE_WINDOWS_LIST='["1h/15m", "24h/1h"]',
        CXPULSE_CARTS_RECOVERY_WINDOW="1d",
        CXPULSE_TICKETS_FORGET_AFTER="1d",
    )
    samples = run(broker, env, days=7, scale=0.25, log=tmp_path / "worker.log")
    (tmp_path / "samples.txt").write_text("\n".join(map(str, samples)))
    kinds = [k for k in samples[0] if ":" in k]
    assert {"merge:buckets", f"{env['CXPULSE_TOPICS_CART']}:entities"} <= set(kinds), kinds
    for kind in kinds:
        # state expires in chunks (a dedup chunk per batch, a bucket per step), so it
        # saw-tooths; what must not happen is a trend: the peak of days 5-7 is the
        # peak of days 2-4 (a leak of one day's worth a day would be +75 %)
        series = [s[kind] for s in samples]
        assert max(series[4:]) <= 1.25 * max(series[1:4]) + 20, (kind, series)
