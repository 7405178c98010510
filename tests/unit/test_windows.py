"""Hopping windows (SPEC §2): parsing, bucket grid, window ends, and which ends close."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.streams.windows import (
    WindowSpec,
    bucket_start,
    current_window_end,
    ends_closed_between,
    ends_closed_in,
    parse_window,
    window_ends_for,
)

SEC = 1_000
MIN = 60 * SEC
HOUR = 60 * MIN
DAY = 24 * HOUR


# --------------------------------------------------------------------------- parse_window


@pytest.mark.parametrize(
    ("text", "size", "step"),
    [
        ("15m/1m", 15 * MIN, MIN),
        ("1h/1m", HOUR, MIN),
        ("24h/15m", DAY, 15 * MIN),
        ("7d/1h", 7 * DAY, HOUR),
        ("30d/1d", 30 * DAY, DAY),
        ("1m/1m", MIN, MIN),  # tumbling: size == step
        ("90s/30s", 90 * SEC, 30 * SEC),
        ("1s/500ms", SEC, 500),
        ("2w/1d", 14 * DAY, DAY),
    ],
)
def test_parse_window_good(text: str, size: int, step: int) -> None:
    spec = parse_window(text)
    assert (spec.size_ms, spec.step_ms) == (size, step)
    assert spec.buckets_per_window == size // step
    assert spec.name == text


@pytest.mark.parametrize("text", ["24h/15m", "1d/15m", "60m/1m", "1h/60s", "7d/1h", "168h/1h"])
def test_parse_window_keeps_the_spelling(text: str) -> None:
    assert parse_window(text).name == text


def test_parse_window_label_does_not_change_equality() -> None:
    assert parse_window("24h/15m") == parse_window("1d/15m")
    assert hash(parse_window("24h/15m")) == hash(parse_window("1d/15m"))
    assert parse_window("1h/1m") < parse_window("1h/5m") < parse_window("24h/15m")


def test_name_without_label_is_the_shortest_spelling() -> None:
    assert WindowSpec(DAY, 15 * MIN).name == "1d/15m"
    assert WindowSpec(HOUR, MIN).name == "1h/1m"
    assert WindowSpec(1500, 500).name == "1500ms/500ms"


def test_parse_window_strips_outer_whitespace() -> None:
    spec = parse_window(" 1h/1m ")
    assert spec.name == "1h/1m"
    assert (spec.size_ms, spec.step_ms) == (HOUR, MIN)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1h",
        "/",
        "1h/",
        "/1m",
        "1h/1m/1s",
        "1h//1m",
        "1h/7m",  # not a whole multiple
        "1m/1h",  # size smaller than step
        "0m/1m",
        "1h/0s",
        "0s/0s",
        "-1h/1m",
        "1h/-1m",
        "1.5h/1m",
        "1x/1m",
        "1h/1y",
        "h/m",
        "1 h/1 m x",
    ],
)
def test_parse_window_bad(text: str) -> None:
    with pytest.raises(ValueError):
        parse_window(text)


@pytest.mark.parametrize("value", [None, 60, 1.5, b"1h/1m", ["1h", "1m"]])
def test_parse_window_not_a_string(value: object) -> None:
    with pytest.raises(ValueError):
        parse_window(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bucket_start


@pytest.mark.parametrize(
    ("ts", "step", "start"),
    [
        (0, MIN, 0),
        (1, MIN, 0),
        (MIN - 1, MIN, 0),
        (MIN, MIN, MIN),  # an exact boundary starts its own bucket
        (MIN + 1, MIN, MIN),
        (-1, MIN, -MIN),  # floor, not truncation towards zero
        (-MIN, MIN, -MIN),
        (-MIN - 1, MIN, -2 * MIN),
        (-MIN + 1, MIN, -MIN),
        (1_795_428_900_123, MIN, 1_795_428_900_000),
        (1_795_428_900_123, 15 * MIN, 1_795_428_900_000),
        (1_795_428_899_999, 15 * MIN, 1_795_428_000_000),
        (1_795_428_900_123, DAY, 1_795_392_000_000),
    ],
)
def test_bucket_start_table(ts: int, step: int, start: int) -> None:
    assert bucket_start(ts, step) == start


@given(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=1, max_value=10 * DAY),
)
def test_bucket_start_is_floor(ts: int, step: int) -> None:
    start = bucket_start(ts, step)
    assert start % step == 0
    assert start <= ts < start + step
    assert start == (ts // step) * step


# --------------------------------------------------------------------------- window_ends_for


# (spec, ts, expected ends) in the style of quix-streams' get_window_ranges tests.
_W_10_5 = WindowSpec(10, 5)
_W_10_10 = WindowSpec(10, 10)
_W_15_5 = WindowSpec(15, 5)


@pytest.mark.parametrize(
    ("spec", "ts", "ends"),
    [
        (_W_10_5, 0, [5, 10]),  # zero: the first window [−5, 5) and [0, 10)
        (_W_10_5, 1, [5, 10]),
        (_W_10_5, 4, [5, 10]),
        (_W_10_5, 5, [10, 15]),  # step boundary: leaves window end 5 (exclusive end)
        (_W_10_5, 9, [10, 15]),
        (_W_10_5, 10, [15, 20]),
        (_W_10_5, -1, [0, 5]),
        (_W_10_5, -5, [0, 5]),
        (_W_10_5, -6, [-5, 0]),
        (_W_10_10, 0, [10]),  # tumbling
        (_W_10_10, 9, [10]),
        (_W_10_10, 10, [20]),
        (_W_10_10, -1, [0]),
        (_W_15_5, 0, [5, 10, 15]),
        (_W_15_5, 14, [15, 20, 25]),
        (_W_15_5, 15, [20, 25, 30]),
        (parse_window("1h/1m"), 59 * MIN + 59_999, [HOUR + i * MIN for i in range(60)]),
        (parse_window("24h/15m"), DAY, [DAY + 15 * MIN * (i + 1) for i in range(96)]),
    ],
)
def test_window_ends_for_table(spec: WindowSpec, ts: int, ends: list[int]) -> None:
    assert list(window_ends_for(ts, spec)) == ends


def _specs() -> st.SearchStrategy[WindowSpec]:
    return st.builds(
        lambda step, k: WindowSpec(step * k, step),
        st.sampled_from([1, 7, 500, SEC, MIN, 15 * MIN, HOUR, DAY]),
        st.integers(min_value=1, max_value=40),
    )


@given(st.integers(min_value=-(10**14), max_value=10**14), _specs())
def test_window_ends_for_covers_exactly_the_windows_holding_ts(ts: int, spec: WindowSpec) -> None:
    ends = list(window_ends_for(ts, spec))
    assert len(ends) == spec.size_ms // spec.step_ms == spec.buckets_per_window
    assert ends == sorted(set(ends))
    for end in ends:
        assert end % spec.step_ms == 0
        assert end - spec.size_ms <= ts < end
    # No other multiple of step qualifies: the neighbours just outside do not cover ts.
    before, after = ends[0] - spec.step_ms, ends[-1] + spec.step_ms
    assert not (before - spec.size_ms <= ts < before)
    assert not (after - spec.size_ms <= ts < after)


# --------------------------------------------------------------------------- current_window_end


@pytest.mark.parametrize(
    ("wm", "end"),
    [(0, 5), (1, 5), (4, 5), (5, 10), (9, 10), (-1, 0), (-5, 0), (-6, -5)],
)
def test_current_window_end_table(wm: int, end: int) -> None:
    assert current_window_end(wm, _W_10_5) == end


@given(st.integers(min_value=-(10**14), max_value=10**14), _specs())
def test_current_window_end_is_the_first_end_not_yet_final(wm: int, spec: WindowSpec) -> None:
    end = current_window_end(wm, spec)
    assert end % spec.step_ms == 0
    # Final once watermark >= E: the open window is the smallest end still above the watermark.
    assert wm < end <= wm + spec.step_ms
    assert end == window_ends_for(wm, spec)[0]


# --------------------------------------------------------------------------- ends_closed_between


def _brute_force_closed(
    starts: list[int], spec: WindowSpec, after: int | None, upto: int
) -> list[int]:
    """Every multiple of step E in (after, upto] whose window [E − size, E) holds a bucket start."""
    if not starts:
        return []
    lo = min(starts) - spec.size_ms - spec.step_ms
    hi = max(starts) + spec.size_ms + spec.step_ms
    first = bucket_start(lo, spec.step_ms)
    out = []
    for end in range(first, hi + 1, spec.step_ms):
        if after is not None and end <= after:
            continue
        if end > upto:
            continue
        if any(end - spec.size_ms <= s < end for s in starts):
            out.append(end)
    return out


@pytest.mark.parametrize(
    ("starts", "after", "upto", "ends"),
    [
        ([0], None, 100, [5, 10]),
        ([0], None, 5, [5]),  # watermark == E closes E
        ([0], None, 4, []),  # watermark one below E keeps it open
        ([0], 5, 10, [10]),  # E == after already closed earlier
        ([0], 4, 5, [5]),
        ([0], 10, 100, []),
        ([0, 5], None, 100, [5, 10, 15]),  # shared end reported once
        ([5, 0], None, 100, [5, 10, 15]),  # sorted whatever the input order
        ([0, 0], None, 100, [5, 10]),
        ([-5], None, 0, [0]),
        ([-5], -1, 5, [0, 5]),
        ([0, 100], 12, 102, []),  # gap: windows between the two buckets are empty
        ([0, 100], 12, 105, [105]),
        ([], None, 10**9, []),
    ],
)
def test_ends_closed_between_table(
    starts: list[int], after: int | None, upto: int, ends: list[int]
) -> None:
    assert list(ends_closed_between(starts, _W_10_5, after, upto)) == ends
    assert list(ends_closed_between(starts, _W_10_5, after, upto)) == _brute_force_closed(
        starts, _W_10_5, after, upto
    )


def test_ends_closed_between_accepts_any_iterable() -> None:
    assert list(ends_closed_between(iter([0]), _W_10_5, None, 10)) == [5, 10]
    assert list(ends_closed_between({0: 1}.keys(), _W_10_5, None, 10)) == [5, 10]


@st.composite
def _closing_case(draw: st.DrawFn) -> tuple[WindowSpec, list[int], int | None, int]:
    step = draw(st.sampled_from([1, 5, MIN, 15 * MIN]))
    spec = WindowSpec(step * draw(st.integers(min_value=1, max_value=12)), step)
    starts = [step * k for k in draw(st.lists(st.integers(-50, 50), max_size=8))]
    after = draw(st.none() | st.integers(-80 * step, 80 * step))
    upto = draw(st.integers(-80 * step, 80 * step))
    return spec, starts, after, upto


@settings(max_examples=300)
@given(_closing_case())
def test_ends_closed_between_matches_brute_force(
    case: tuple[WindowSpec, list[int], int | None, int],
) -> None:
    spec, starts, after, upto = case
    got = list(ends_closed_between(starts, spec, after, upto))
    assert got == _brute_force_closed(starts, spec, after, upto)
    assert got == sorted(set(got))
    for end in got:
        assert end % spec.step_ms == 0
        assert (after is None or after < end) and end <= upto


@settings(max_examples=300)
@given(_closing_case(), st.lists(st.integers(0, 14), max_size=8))
def test_ends_closed_in_sorted_starts_equals_the_full_walk(
    case: tuple[WindowSpec, list[int], int | None, int], offsets: list[int]
) -> None:
    """The bisected form looks at fewer starts and finds the same ends, for starts on the
    grid and off it (any offset within the step)."""
    spec, starts, after, upto = case
    starts = [s + o % spec.step_ms for s, o in zip(starts, offsets, strict=False)] + starts
    ascending = sorted(starts)
    got = list(ends_closed_in(ascending, spec, after, upto))
    assert got == list(ends_closed_between(starts, spec, after, upto))
    assert got == _brute_force_closed(starts, spec, after, upto)


def test_ends_closed_in_at_every_bound() -> None:
    """One start against every ``after`` and ``upto`` around it, on and off the grid: the
    bisection's bounds are exact to the millisecond (a start one step outside them
    still has an end in ``(after, upto]``; a random draw seldom lands there)."""
    for spec in (WindowSpec(5, 5), WindowSpec(10, 5), WindowSpec(15, 5)):
        for start in range(-12, 13):
            for after in [None, *range(-25, 26)]:
                for upto in range(-25, 26):
                    got = list(ends_closed_in([start], spec, after, upto))
                    assert got == _brute_force_closed([start], spec, after, upto)


@settings(max_examples=200)
@given(
    st.sampled_from([1, 5, MIN]),
    st.integers(min_value=1, max_value=10),
    st.lists(st.integers(-40, 40), min_size=1, max_size=8),
    st.lists(st.integers(-100, 100), min_size=1, max_size=10),
)
def test_windows_become_final_exactly_when_the_watermark_passes_their_end(
    step: int, k: int, bucket_ks: list[int], marks: list[int]
) -> None:
    """Walking a non-decreasing watermark, each end with observations closes exactly once,
    in the first move that takes the watermark to ≥ E, and never before."""
    spec = WindowSpec(step * k, step)
    starts = [b * step for b in bucket_ks]
    watermarks = sorted(m * step + (m % 3) for m in marks)  # some on, some off boundaries
    closed: list[int] = []
    previous: int | None = None
    for wm in watermarks:
        newly = list(ends_closed_between(starts, spec, previous, wm))
        for end in newly:
            assert previous is None or previous < end  # not final before
            assert end <= wm  # final now
        closed.extend(newly)
        previous = wm
    assert len(closed) == len(set(closed))  # each window is final once
    assert closed == _brute_force_closed(starts, spec, None, watermarks[-1])
    # Every end with an observation that the last watermark reached has been closed.
    every_end = {e for s in starts for e in window_ends_for(s, spec)}
    assert set(closed) == {e for e in every_end if e <= watermarks[-1]}
