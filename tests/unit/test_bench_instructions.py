"""The instruction count of the engine bench: the engine's run only, growing with the work."""

from __future__ import annotations

import shutil

import pytest

from benchmarks.instructions import count

pytestmark = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("callgrind_control") is None,
    reason="valgrind (callgrind) is not installed",
)


def test_the_count_covers_the_run_and_grows_with_the_events() -> None:
    small, n_small = count("answers", 1_000)
    large, n_large = count("answers", 4_000)
    # the workload's events (and its closing heartbeats) are what ran
    assert n_small > 1_000 and n_large > 4_000
    per_small, per_large = small / n_small, large / n_large
    assert large > 2 * small
    # the interpreter's start-up and the imports (hundreds of millions of instructions,
    # uncounted) would put a thousand events far above this
    assert 5_000 < per_large < per_small < 200_000


def test_the_merge_stage_alone_counts_less_than_both_stages() -> None:
    """``stage=merge`` counts the merge stage's run only: the source stage that built its
    partials is not in it, and both stages together count more."""
    options = {"batch": "500", "group": "2"}
    merge, n_merge = count("mixed", 3_000, 28.0, {**options, "stage": "merge"})
    both, n_both = count("mixed", 3_000, 28.0, {**options, "stage": "both"})
    assert n_merge == n_both >= 3_000
    assert 0 < merge < both / 2


def test_the_closing_heartbeats_can_be_left_out() -> None:
    """``heartbeats=drop`` counts the answers alone: fewer records, and less work, since
    the closing heartbeats close every window and forget every response."""
    kept, n_kept = count("answers", 2_000)
    dropped, n_dropped = count("answers", 2_000, options={"heartbeats": "drop"})
    assert n_dropped == 2_000 < n_kept
    assert dropped < kept
