"""The entity chunk log: what a restore after a crash anywhere gives, and what it leaves.

A model worker keeps a dict of entities and a table (the changelog after compaction).
Each batch sets and drops random keys; its records (the deletes owed by earlier
batches, then its chunk) reach the table in order, and a crash keeps any prefix
of one batch's records. A restore from the committed records (and the committed
floor) must give exactly the entities of the last committed batch, and once every
entity is dropped no record may be left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.streams import entitylog
from cxpulse.streams.entitylog import EntityLog
from cxpulse.streams.families.survey.family import SurveyFamily

PREFIX = "0|c|"

#: one batch: (key, value or None to drop) changes, applied in order
batch_strategy = st.lists(
    st.tuples(st.integers(0, 12).map(lambda i: f"k{i}"), st.one_of(st.none(), st.integers(0, 9))),
    max_size=8,
)

#: one batch's forgotten keys (dropped after its changes, as the engine's wake loop does)
forget_strategy = st.lists(st.integers(0, 12).map(lambda i: f"k{i}"), max_size=6)


class Model:
    """A worker's entities, its log and the table its records reached."""

    def __init__(self) -> None:
        self.entities: dict[str, Any] = {}
        self.log = EntityLog()
        self.table: dict[str, bytes] = {}
        self.seq = 0  # the last committed batch
        self.floor = 0  # its log's floor, as the meta record carries it
        self.pending: list[str] = []  # stale records to delete (a restore found them)

    def batch(
        self,
        changes: list[tuple[str, int | None]],
        forget: Sequence[str] = (),
    ) -> list[tuple[str, bytes | None]]:
        """The records of the next batch, applied to the model (not to the table).

        After the changes, the held keys of ``forget`` are dropped as the engine's wake
        loop forgets entities: listed apart (``forgotten``), not in ``changed``, whether
        the batch touched them before or not.
        """
        before: dict[str, bool] = {}
        for key, value in changes:
            before.setdefault(key, key in self.entities)
            if value is None:
                self.entities.pop(key, None)
            else:
                self.entities[key] = [value]
        forgotten = [k for k in dict.fromkeys(forget) if k in self.entities]
        for key in forgotten:
            del self.entities[key]
        writes: list[tuple[str, bytes | None]] = [(k, None) for k in self.pending]
        self.pending = []
        writes += [(k, None) for k in self.log.tombstones()]
        writes += self.log.write(self.seq + 1, before, self.entities, PREFIX, None, forgotten)
        return writes

    def commit(self) -> None:
        """The batch's records all reached the table: its meta record is written."""
        self.seq += 1
        self.floor = self.log.floor(self.seq)

    def apply(self, writes: list[tuple[str, bytes | None]]) -> None:
        for key, value in writes:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value

    def restore(self) -> EntityLog:
        """A fresh log from the table, as :meth:`PartitionProcessor.restore` builds it."""
        parts = []
        self.pending = []
        for key, raw in self.table.items():
            rec = orjson.loads(raw)
            if rec["s"] > self.seq:
                self.pending.append(key)
            else:
                parts.append((rec["s"], key, rec["e"]))
        log = EntityLog()
        self.entities = log.restore(parts, self.floor)
        self.log = log
        return log


@settings(max_examples=1_000, deadline=None)
@given(
    batches=st.lists(batch_strategy, min_size=1, max_size=30),
    forgets=st.lists(forget_strategy, max_size=30),
    crashes=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 60)), max_size=4),
    part=st.sampled_from([1, 2, 3, 4_096]),
    max_chunks=st.sampled_from([1, 2, 4, 256]),
    min_compaction=st.sampled_from([1, 2, 512]),
)
def test_a_restore_after_a_crash_anywhere_gives_the_committed_entities(
    batches: list[list[tuple[str, int | None]]],
    forgets: list[list[str]],
    crashes: list[tuple[int, int]],
    part: int,
    max_chunks: int,
    min_compaction: int,
) -> None:
    # several records per chunk, and compaction of dense chunks a few entries at a time
    entitylog.PART_ENTRIES = part
    entitylog.MAX_CHUNKS, entitylog.MIN_COMPACTION = max_chunks, min_compaction
    try:
        model = Model()
        crash_at = dict(crashes)
        for i, changes in enumerate(batches):
            forget = forgets[i] if i < len(forgets) else []
            committed = dict(model.entities)
            writes = model.batch(changes, forget)
            if i in crash_at:
                model.apply(writes[: crash_at[i] % (len(writes) + 1)])
                model.restore()
                assert model.entities == committed
                writes = model.batch(changes, forget)  # the batch again, after the restart
            model.apply(writes)
            model.commit()
            expected = dict(model.entities)
            model.restore()
            assert model.entities == expected
        # everything dropped: two batches later no record is left
        model.apply(model.batch([(k, None) for k in list(model.entities)]))
        model.commit()
        model.apply(model.batch([]))
        model.commit()
        assert model.entities == {}
        assert model.table == {}, sorted(model.table)
        assert len(model.log) == 0
    finally:
        entitylog.PART_ENTRIES, entitylog.MAX_CHUNKS, entitylog.MIN_COMPACTION = 4_096, 256, 512


def test_one_long_lived_entity_does_not_keep_every_later_chunk() -> None:
    """Compaction: the sparse oldest chunk's live values move forward, so the
    marker chunks behind it can go."""
    model = Model()
    model.apply(model.batch([("keep", 1)] + [(f"a{i}", 1) for i in range(5)]))
    model.commit()
    for n in range(50):
        changes = [(f"b{n}-{i}", 1) for i in range(4)]
        changes += [(f"b{n - 1}-{i}", None) for i in range(4)] if n else []
        changes += [(f"a{i}", None) for i in range(5)] if n == 0 else []
        model.apply(model.batch(changes))
        model.commit()
    chunks = {key.split("|")[2] for key in model.table}
    assert len(chunks) <= 3, sorted(chunks)
    model.restore()
    assert set(model.entities) == {"keep", *(f"b49-{i}" for i in range(4))}


def test_a_dense_old_chunk_is_compacted_once_too_many_chunks_survive() -> None:
    """A chunk whose values all stay alive (open tickets, say) is moved forward a
    budget at a time once more than MAX_CHUNKS chunks survive behind it."""
    model = Model()
    model.apply(model.batch([(f"old{i}", 1) for i in range(2_000)]))
    model.commit()
    most = 0
    for n in range(1_200):
        changes = [(f"n{n}", 1)] + ([(f"n{n - 1}", None)] if n else [])
        model.apply(model.batch(changes))
        model.commit()
        most = max(most, len(model.log))
    # the front chunk moves MIN_COMPACTION values per batch: 4 batches for 2,000
    assert most <= entitylog.MAX_CHUNKS + 2_000 // entitylog.MIN_COMPACTION + 1
    assert not any(key.startswith(f"{PREFIX}1|") for key in model.table)  # moved forward
    expected = dict(model.entities)
    model.restore()
    assert model.entities == expected


def test_a_marker_outlives_a_later_drop_in_its_chunk_while_an_older_chunk_survives() -> None:
    """``j``'s marker shadows its stale value in the first chunk, which stays (dense):
    the marker's chunk must stay too, even once its own value is dropped."""
    model = Model()
    for changes in ([("j", 1), ("a", 1), ("b", 1)], [("j", None), ("k", 1)], [("k", None)]):
        model.apply(model.batch(changes))
        model.commit()
    model.apply(model.batch([]))
    model.commit()
    model.restore()
    assert model.entities == {"a": [1], "b": [1]}


def test_a_chunk_larger_than_a_record_is_split() -> None:
    log = EntityLog()
    big = {f"k{i}": ["x" * 200] for i in range(5_000)}
    writes = log.write(1, dict.fromkeys(big, False), big, PREFIX)
    assert len(writes) > 2
    assert all(len(raw) <= entitylog.MAX_RECORD_BYTES for _, raw in writes)
    parts = [(1, key, orjson.loads(raw)["e"]) for key, raw in writes]
    assert EntityLog().restore(parts) == big


def test_records_written_by_the_earlier_one_record_per_entity_format_are_converted() -> None:
    """Restore reads ``<p>|e|<key>`` records and rewrites them as a chunk; the old
    records are deleted by the batch after."""
    from cxpulse.streams.engine import EngineConfig, PartitionProcessor
    from cxpulse.streams.families.survey.family import SurveyFamily
    from cxpulse.streams.families.survey.packed import home_list
    from cxpulse.streams.watermarks import TimePolicy

    # the segments registered, as any earlier response in the process would: the value
    # is then held packed whatever ran before this test (the registry is process-wide)
    home_list(("all", "channel=web"))
    config = EngineConfig(
        "survey", (60_000,), TimePolicy(120_000, 10**12, 300_000), 86_400_000, ("channel",), 20
    )
    family = SurveyFamily(86_400_000)
    value = [1_000, ["all", "channel=web"]]
    records = {
        "0|m": orjson.dumps({"s": 3, "o": 10, "mx": 1_000, "a": None, "seg": {}}),
        "0|e|r1": orjson.dumps({"s": 2, "v": value, "pv": None}),
        "0|e|r2": orjson.dumps({"s": 3, "v": None, "pv": value}),  # a soft delete
        "0|e|r3": orjson.dumps({"s": 4, "v": value, "pv": None}),  # stale: rolled back
    }
    proc = PartitionProcessor.restore(family, config, 0, records, 2_000)
    assert proc.entities == {"r1": family.compact(value)}  # held packed (survey.packed)
    first = proc.process([], 2_000, None)
    written = dict(first.writes)
    assert written["0|e|r2"] is None and written["0|e|r3"] is None
    (chunk,) = [orjson.loads(v) for k, v in first.writes if k.startswith("0|c|") and v]
    assert chunk["s"] == 4
    assert {k: family.load(v, chunk["x"]) for k, v in chunk["e"].items()} == proc.entities
    second = proc.process([], 2_000, None)
    assert ("0|e|r1", None) in second.writes


class _TwoStepFamily(SurveyFamily):
    """Each response wakes twice, 1 ms apart (the same wake step): first it is set
    to its second state, then dropped."""

    def observe(self, event: Any, ctx: Any) -> None:
        ctx.set_entity(event.response_id, [event.ts, 0])

    def wake_at(self, value: Any) -> int | None:
        return int(value[0]) + 1_000

    def on_wake(self, key: str, value: Any, watermark: int, ctx: Any) -> None:
        if value[1] == 0:
            ctx.set_entity(key, [value[0] + 1, 1])
        else:
            ctx.drop_entity(key)


def test_an_entity_set_anew_while_it_wakes_wakes_again_in_the_same_step() -> None:
    from cxpulse.schemas.input import RawRecord
    from cxpulse.streams.engine import EngineConfig, PartitionProcessor
    from cxpulse.streams.watermarks import TimePolicy

    config = EngineConfig(
        "survey", (60_000,), TimePolicy(0, 10**12, 300_000), 86_400_000, ("channel",), 20
    )
    proc = PartitionProcessor(_TwoStepFamily(86_400_000), config, 0, 2_000_000)
    answer = {
        "type": "answer",
        "event_id": "e1",
        "ts": 1_000_000,
        "survey_id": "s",
        "response_id": "r1",
        "customer_id": "c",
        "question": "nps",
        "score": 9,
    }
    proc.process([RawRecord(0, None, orjson.dumps(answer))], 2_000_000, None)
    beat = {"type": "heartbeat", "ts": 1_030_000}
    proc.process([RawRecord(1, None, orjson.dumps(beat))], 2_000_000, None)
    assert proc.entities == {"r1": [1_000_001, 1]}  # its first wake set it anew
    proc.process([], 2_000_000, None)
    assert proc.entities == {}  # and the second, in the same step, dropped it


def test_entities_dropped_in_the_order_they_came_need_no_markers() -> None:
    """Drops that kill the front chunk write nothing for it but its deletes; a crash
    before those deletes is covered by the committed floor, not by markers."""
    model = Model()
    for n in range(3):
        model.apply(model.batch([(f"r{n}-{i}", n) for i in range(3)]))
        model.commit()
    writes = model.batch([(f"r0-{i}", None) for i in range(3)] + [("late", 7)])
    chunk = [orjson.loads(v)["e"] for k, v in writes if v is not None]
    assert chunk == [{"late": [7]}]  # no marker for r0-*: their chunk 1 died with them
    model.apply(writes)
    model.commit()
    assert model.floor == 2
    assert any(k.startswith(f"{PREFIX}1|") for k in model.table)  # not deleted yet: a crash
    expected = dict(model.entities)
    model.restore()
    assert model.entities == expected and "r0-0" not in model.entities
    tombstones = model.batch([])
    assert all(k.startswith(f"{PREFIX}1|") and v is None for k, v in tombstones)
    assert tombstones
    model.apply(tombstones)
    model.commit()
    assert not any(k.startswith(f"{PREFIX}1|") for k in model.table)
