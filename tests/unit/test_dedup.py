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


class _Model:
    """The rule stated directly, each id's ``ts`` kept beside it (the oracle)."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.latest: dict[str, tuple[int, int]] = {}  # id -> (ts, seq) of its latest copy
        self.chunks: dict[int, tuple[int, list[str]]] = {}  # seq -> (newest ts, ids)
        self.pending: dict[str, int] = {}

    def is_duplicate(self, event_id: str, watermark: int | None) -> bool:
        held = self.latest.get(event_id)
        return held is not None and (watermark is None or held[0] >= watermark - self.horizon)

    def register(self, event_id: str, ts: int, seq: int) -> None:
        self.latest[event_id] = (ts, seq)
        self.pending[event_id] = ts

    def take_chunk(self, seq: int) -> dict[str, int] | None:
        if not self.pending:
            return None
        chunk, self.pending = self.pending, {}
        self.chunks[seq] = (max(chunk.values()), list(chunk))
        return chunk

    def expire(self, watermark: int) -> list[int]:
        gone = []
        for seq, (newest, _) in self.chunks.items():
            if newest >= watermark - self.horizon:
                break
            gone.append(seq)
        for seq in gone:
            for event_id in self.chunks.pop(seq)[1]:
                if self.latest[event_id][1] == seq:
                    del self.latest[event_id]
        return gone


_BATCHES = st.lists(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 2_500)), max_size=8),
    max_size=12,
)


@given(_BATCHES, st.integers(0, 400))
def test_the_index_equals_the_rule_with_every_ts_kept(
    batches: list[list[tuple[str, int]]], lateness: int
) -> None:
    """Batches as the engine runs them: expiry at the batch's start from the watermark
    the batch before left, a repeat within the horizon dropped, ids registered, one
    chunk per batch. Every answer equals the oracle's, also for ids whose chunk
    straddles the horizon's edge (found by their own ts), and so does a restore."""
    index, model = DedupIndex(H), _Model(H)
    records: dict[int, dict[str, int]] = {}  # the chunk records a table would hold
    max_ts: int | None = None
    base = 0
    for seq, batch in enumerate(batches, start=1):
        wm = None if max_ts is None else max_ts - lateness
        if wm is not None:
            gone = index.expire(wm)
            assert gone == model.expire(wm)
            for expired in gone:
                del records[expired]
        for event_id, offset in batch:
            ts = base + offset
            pwm = None if max_ts is None else max_ts - lateness  # moves within the batch
            dup = index.is_duplicate(event_id, pwm)
            assert dup == model.is_duplicate(event_id, pwm), (event_id, ts, pwm)
            if not dup:
                index.register(event_id, ts, seq)
                model.register(event_id, ts, seq)
                max_ts = ts if max_ts is None else max(max_ts, ts)
        chunk = index.take_chunk(seq)
        assert chunk == model.take_chunk(seq)
        if chunk is not None:
            records[seq] = chunk
        base += 600  # time moves on: old chunks pass the horizon, some straddle it
        assert index.ids() == set(model.latest)
        for probe in "abcdefghi":
            assert index.first_ts(probe) == (model.latest.get(probe) or (None,))[0]
            for probe_wm in (None, base - 1_500, base - 900, base, base + 700):
                assert index.is_duplicate(probe, probe_wm) == model.is_duplicate(probe, probe_wm)
    restored = DedupIndex(H)
    restored.restore(reversed(list(records.items())))  # the table: any order
    assert restored.ids() == index.ids()
    for probe in "abcdefghi":
        assert restored.first_ts(probe) == index.first_ts(probe)
        for probe_wm in (None, base - 1_500, base - 900, base):
            assert restored.is_duplicate(probe, probe_wm) == index.is_duplicate(probe, probe_wm)


def test_an_id_in_a_chunk_that_straddles_the_edge_is_judged_by_its_own_ts() -> None:
    index = DedupIndex(H)
    index.register("old", 1_000, 1)
    index.register("new", 3_000, 1)
    index.take_chunk(1)
    # edge 2_000: the chunk holds ids on both sides of it
    assert not index.is_duplicate("old", 3_000)
    assert index.is_duplicate("new", 3_000)
    assert index.first_ts("old") == 1_000 and index.first_ts("new") == 3_000
    assert index.expire(3_000) == []  # its newest id is still inside


def test_ids_share_their_chunks_sequence_number() -> None:
    """No int object per id: every id of a chunk names the one sequence number."""
    index = DedupIndex(H)
    seq = 10**6  # not a cached small int
    for i in range(100):
        index.register(f"id-{i}", 1_000 + i, seq)
    index.take_chunk(seq)
    assert len({id(v) for v in index.chunk_of.values()}) == 1


def test_every_copy_of_a_straddling_chunk_is_judged_by_its_own_ts() -> None:
    """A replay of day-old events: every copy of a big chunk that straddles the edge."""
    index = DedupIndex(H)
    for i in range(20_000):
        index.register(f"e{i}", i, 1)
    index.take_chunk(1)
    watermark = 12_345 + H  # edge 12,345: ids below it are past the horizon
    judged = [index.is_duplicate(f"e{i}", watermark) for i in range(20_000)]
    assert judged == [i >= 12_345 for i in range(20_000)]
