"""DedupIndex: the first copy wins while it is within the horizon of the watermark."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cxpulse.streams.dedup import DedupIndex

H = 1_000


def test_a_copy_within_the_horizon_is_a_duplicate_and_one_past_it_is_not() -> None:
    index = DedupIndex(H)
    assert not index.is_duplicate("a", None)
    index.register("a", 5_000, seq=1)
    assert index.is_duplicate("a", None)
    assert index.is_duplicate("a", 6_000)  # first copy exactly the horizon behind: still counts
    assert not index.is_duplicate("a", 6_001)


def test_expiry_drops_whole_chunks_past_the_horizon_only() -> None:
    index = DedupIndex(H)
    index.register("a", 1_000, 1)
    assert index.take_chunk(1) == {"a": 1_000}
    index.register("b", 3_000, 2)
    assert index.take_chunk(2) == {"b": 3_000}
    assert index.take_chunk(3) is None  # nothing registered since
    assert index.expire(2_000) == []
    assert index.expire(2_001) == [1]
    assert "a" not in index and "b" in index


def test_a_re_registered_id_survives_the_expiry_of_its_old_chunk() -> None:
    index = DedupIndex(H)
    index.register("a", 1_000, 1)
    index.take_chunk(1)
    index.register("a", 5_000, 2)  # past the horizon: a new first copy
    index.take_chunk(2)
    assert index.expire(4_000) == [1]
    assert index.is_duplicate("a", 5_500)


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 10_000)), max_size=40))
def test_restore_from_chunks_equals_the_live_index(events: list[tuple[str, int]]) -> None:
    live = DedupIndex(H)
    chunks = []
    for seq, (event_id, ts) in enumerate(events, start=1):
        if not live.is_duplicate(event_id, ts):
            live.register(event_id, ts, seq)
        chunk = live.take_chunk(seq)
        if chunk is not None:
            chunks.append((seq, chunk))
    restored = DedupIndex(H)
    restored.restore(reversed(chunks))
    for probe in "abcdefg":
        for wm in (0, 5_000, 11_000):
            assert restored.is_duplicate(probe, wm) == live.is_duplicate(probe, wm)
