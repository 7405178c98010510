"""The per-partition engine: validation, dedup, lateness, buckets and persisted state.

One :class:`PartitionProcessor` owns one partition of one input topic. It turns a
batch of raw records into

* dead letters and outcome counts (invalid, duplicate, late, accepted),
* bucket aggregates: integer counters per (grid step, bucket start, segment),
  one grid per distinct window step, summed by the merge stage into windows,
* table writes that persist its whole state, and
* snapshots of the buckets the batch changed, for the merge stage.

Exactly-once without broker transactions. Every persisted record carries the
sequence number ``s`` of the batch that wrote it; a bucket record also the value
it replaced (``pv``), while dedup ids and entities go to append-only per-batch
chunks (:mod:`cxpulse.streams.entitylog`) that a rollback simply ignores. The
partition's meta record (:attr:`BatchOutput.commit`) names the
last complete batch and the input offset it reached. It is written *last*, once
every other effect of the batch (its table writes, snapshots, status and dead
letters) is acknowledged by the broker: a batch whose state reached the
changelog while its snapshots were lost would otherwise count as done, and its
buckets, expired at the next batch's start, would never reach the merge stage.
A changelog partition is written by one producer in order, so after a crash it
holds complete batches plus at most the writes of one more without its meta:
:meth:`PartitionProcessor.restore` rolls those back and the records
after the meta offset are simply processed again (records at or below it are
skipped). Snapshots carry the input
offset as a version, so the merge stage keeps the newest one whatever the
interleaving of old and new owners.

State is bounded: buckets go once their end is below the partition watermark
(no accepted event can reach them; the merge stage keeps what windows need),
dedup ids after the horizon, entities when the family says they are inert.
Expiry is decided at batch start from the watermark the previous batch left,
so rolling back a batch never needs an expired value again.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

import orjson

from cxpulse.schemas.deadletter import DeadLetter, dead_letter
from cxpulse.schemas.encoding import dumps_kept
from cxpulse.schemas.events import Heartbeat, Invalid
from cxpulse.schemas.input import InputRecord
from cxpulse.streams.dedup import DedupIndex
from cxpulse.streams.entitylog import EntityLog
from cxpulse.streams.family import Deltas, Family
from cxpulse.streams.segments import SegmentCap
from cxpulse.streams.watermarks import PartitionStatus, TimePolicy, is_late, partition_watermark

#: Coarse time step of the wake index (entities are looked at per step of event time).
_WAKE_STEP_MS = 60_000
#: Records decoded per call of a family's ``decode_many``: one call for the whole batch
#: was slower than one per record (its events leave the cache before they are observed;
#: docs/performance.md), runs of 256 ~7 % faster on the peers' answers.
_DECODE_RUN = 256


def _latest(*marks: int | None) -> int | None:
    """The most advanced of some watermarks, ``None`` when none is known."""
    known = [m for m in marks if m is not None]
    return max(known) if known else None


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """What the engine needs from the settings, for one input topic."""

    topic: str
    grids: tuple[int, ...]
    policy: TimePolicy
    dedup_horizon_ms: int
    dimensions: tuple[str, ...]
    max_segment_values: int

    @property
    def fine_grid(self) -> int:
        return math.gcd(*self.grids)


@dataclass(frozen=True, slots=True)
class BucketSnapshot:
    """The full current value of one source bucket (replace semantics, versioned)."""

    label: str
    grid: int
    start: int
    counts: list[Any]


@dataclass(slots=True)
class BatchOutput:
    """Everything a batch produced, for the agent to send, write and count."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    writes: list[tuple[str, bytes | None]] = field(default_factory=list)
    snapshots: list[BucketSnapshot] = field(default_factory=list)
    #: the meta record, to be written only after everything else of the batch is durable
    commit: tuple[str, bytes] | None = None


_dumps = dumps_kept


class PartitionProcessor:
    """State and logic for one input partition (see the module docstring)."""

    def __init__(self, family: Family, config: EngineConfig, partition: int, now_wall_ms: int):
        self.family = family
        self._spec = family.aggregate
        self.config = config
        self.partition = partition
        self.seq = 0
        self.offset = -1
        self.max_ts: int | None = None
        #: the effective watermark up to which time-driven decisions were made (see ``ack``)
        self.ack: int | None = None
        self.last_arrival_wall_ms = now_wall_ms
        self.segments = SegmentCap(config.dimensions, config.max_segment_values)
        #: ObserveContext's ``labels`` and ``entity``: the bound methods themselves, not
        #: wrappers (once or twice per event each); rebound where their owners are replaced
        self.labels: Callable[[object], tuple[str, ...]] = self.segments.labels
        #: the finest grid step, once: ``add`` runs per accepted event and label
        self._fine_step = config.fine_grid
        self.buckets: dict[tuple[int, int, str], list[Any]] = {}
        self.entities: dict[str, Any] = {}
        self.entity: Callable[[str], Any] = self.entities.get
        #: open entities per tuple of segment labels (the families' shared tuples): one
        #: move per change instead of one per label; :attr:`gauges` spreads them per label
        self._open_counts: dict[tuple[str, ...], int] = {}
        #: the family's open-entity gauge: its name and the function giving an entity's
        #: labels in it (looked up once: entities change often), if the family has one
        self._gauge: str = getattr(family, "open_gauge", "")
        self._open_of = getattr(family, "open_labels", None) if self._gauge else None
        self.dedup = DedupIndex(config.dedup_horizon_ms)
        #: coarse event time -> entities to wake then. Lists, not sets (8 bytes a key, not
        #: ~70): a key is added again only when its wake step moves, or when it comes back
        #: after a drop, and a repeat is harmless (:meth:`_wake_up` wakes each key once)
        self._wake: dict[int, list[str]] = {}
        self._waking = False  # in :meth:`_wake_up`: the steps woken are no longer listed
        self._wake_at = family.wake_at  # looked up once: called once per entity change
        #: the family's ``forget_at``, if it has one (streams.family.Family): entities past
        #: it are dropped by :meth:`_wake_up` itself, without a call of ``on_wake``
        self._forget_at: Callable[[Any], int] | None = getattr(family, "forget_at", None)
        #: the family's ``forget_below``, if it has one (streams.family.Family): a wake step
        #: whose values are all ints below it is forgotten whole, by C loops
        self._forget_below: Callable[[int], int] | None = getattr(family, "forget_below", None)
        #: the family's run decoder, if it has one (streams.family.Family: one call per run
        #: of records; a ``None`` it gives is decided by ``parse``)
        self._decode_many = getattr(family, "decode_many", None)
        #: what the family's entity values name in this process, written with them
        #: (streams.family.Family: surveys)
        self._chunk_context: Callable[[Iterable[Any]], Any] | None = getattr(
            family, "chunk_context", None
        )
        self._pending: dict[str, bytes | None] = {}  # deletes owed after a rollback
        #: which chunk records hold the entities (:mod:`cxpulse.streams.entitylog`)
        self.entity_log = EntityLog()
        # per-batch scratch
        #: the batch's increments per (fine bucket start, label tuple)
        self._fine: dict[tuple[int, tuple[str, ...]], list[Any]] = {}
        #: per key the batch changed: whether it existed before the batch (its old value is
        #: not kept: a dropped entity's memory is free at once)
        self._entity_prev: dict[str, bool] = {}
        #: keys :meth:`_wake_up` dropped past the family's ``forget_at`` (one list append
        #: each, not an entry in ``_entity_prev``: every response ends here once)
        self._forgotten: list[str] = []

    # ----------------------------------------------------------------- keys
    def _key(self, *parts: object) -> str:
        return "|".join((str(self.partition), *map(str, parts)))

    @property
    def meta_key(self) -> str:
        return self._key("m")

    # ------------------------------------------------------------ restoring
    @classmethod
    def restore(
        cls,
        family: Family,
        config: EngineConfig,
        partition: int,
        records: Mapping[str, bytes],
        now_wall_ms: int,
    ) -> PartitionProcessor:
        """Rebuild from this partition's table records, rolling back a half-written batch."""
        proc = cls(family, config, partition, now_wall_ms)
        prefix = f"{partition}|"
        meta_raw = records.get(proc.meta_key)
        if meta_raw is not None:
            meta = orjson.loads(meta_raw)
            proc.seq, proc.offset, proc.max_ts = meta["s"], meta["o"], meta["mx"]
            proc.ack = meta.get("a")
            proc.segments = SegmentCap(config.dimensions, config.max_segment_values, meta["seg"])
            proc.labels = proc.segments.labels
        chunks: list[tuple[int, dict[str, int]]] = []
        load = getattr(family, "load", None)
        entity_parts: list[tuple[int, str, dict[str, Any]]] = []
        for key, raw in records.items():
            if not key.startswith(prefix) or key == proc.meta_key:
                continue
            rec = orjson.loads(raw)
            stale = rec["s"] > proc.seq
            kind, _, rest = key[len(prefix) :].partition("|")
            if kind == "d" or kind == "c":
                if stale:
                    proc._pending[key] = None
                elif kind == "d":
                    chunks.append((rec["s"], rec["ids"]))
                elif "x" in rec and load is not None:  # values naming the writer's context
                    x, entries = rec["x"], rec["e"]
                    loaded = {k: None if v is None else load(v, x) for k, v in entries.items()}
                    entity_parts.append((rec["s"], key, loaded))
                else:
                    entity_parts.append((rec["s"], key, rec["e"]))
                continue
            value = rec["pv"] if stale else rec["v"]
            if kind == "e":  # one record per entity (earlier format): moved into chunks
                if value is None:
                    proc._pending[key] = None
                else:
                    entity_parts.append((0, key, {rest: value}))
                continue
            if stale:
                proc._pending[key] = (
                    None if value is None else _dumps({"s": proc.seq, "v": value, "pv": value})
                )
            if value is None:
                proc._pending.setdefault(key, None)  # a soft delete whose tombstone was lost
                continue
            if kind == "b":
                grid, start, label = rest.split("|", 2)
                proc.buckets[(int(grid), int(start), label)] = family.aggregate.fit(value)
        floor = 0 if meta_raw is None else meta.get("cf", 0)
        proc.entities = proc.entity_log.restore(entity_parts, floor)
        proc.entity = proc.entities.get
        compact = getattr(family, "compact", None)
        if compact is not None:  # the form the family holds in memory (streams.family)
            for key, value in proc.entities.items():
                proc.entities[key] = compact(value)
        for key, value in proc.entities.items():
            proc._schedule(key, value)
            proc._count(proc._labels_open(value), 1)
        for key in proc.entity_log.keys_in(0):  # the earlier format's: written anew
            proc._entity_prev[key] = True
        proc.dedup.restore(chunks)
        return proc

    # -------------------------------------------------------------- status
    @property
    def watermark(self) -> int | None:
        return partition_watermark(self.max_ts, self.config.policy)

    def status(self) -> PartitionStatus:
        return PartitionStatus(
            self.partition, self.offset, self.max_ts, self.last_arrival_wall_ms, self.ack
        )

    def live_snapshots(self) -> list[BucketSnapshot]:
        """Every bucket still held, for re-sending after a restart or a takeover."""
        copy = self._spec.copy
        return [BucketSnapshot(lb, g, st, copy(c)) for (g, st, lb), c in self.buckets.items()]

    # ---------------------------------------------------- ObserveContext API
    def add(self, ts: int, labels: Sequence[str], deltas: Deltas) -> None:
        # one row per (fine bucket, label tuple), spread over the labels once per batch
        # (_fold): one lookup per call, not one per label
        key = (ts - ts % self._fine_step, labels if type(labels) is tuple else tuple(labels))
        fine = self._fine
        spec = self._spec
        acc = fine.get(key)
        if acc is None:
            acc = fine[key] = spec.zero()
        if spec.simple:  # AggregateSpec.apply's all-sum case, without the call: a hot path
            for slot, delta in deltas:
                acc[slot] += delta
        else:
            spec.apply(acc, deltas)

    def open_entity(
        self,
        key: str,
        value: Any,
        wake_at: int | None,
        ts: int,
        labels: Sequence[str],
        deltas: Deltas,
    ) -> None:
        """:meth:`add` then :meth:`set_entity` of a key :meth:`entity` just found absent,
        with the family's ``wake_at(value)`` given: one call where the usual new entity
        (a survey response's first answer, once per response) made three.

        :meth:`add`'s and :meth:`_list_at`'s work are written out here, not called:
        the two calls cost 3.7 % of the engine's instructions on the peers' answers
        (``python -m benchmarks.instructions answers 50000``: 38,395 against 37,014
        per answer)."""
        row = (ts - ts % self._fine_step, labels if type(labels) is tuple else tuple(labels))
        fine = self._fine
        spec = self._spec
        acc = fine.get(row)
        if acc is None:
            acc = fine[row] = spec.zero()
        if spec.simple:
            for slot, delta in deltas:
                acc[slot] += delta
        else:
            spec.apply(acc, deltas)
        self._entity_prev.setdefault(key, False)
        open_of = self._open_of
        if open_of is not None:
            self._count(open_of(value), 1)
        self.entities[key] = value
        if wake_at is not None:
            step = wake_at - wake_at % _WAKE_STEP_MS
            keys = self._wake.get(step)
            if keys is None:
                keys = self._wake[step] = []
            keys.append(key)

    def set_entity(self, key: str, value: Any) -> None:
        entities = self.entities
        old = entities.get(key)
        self._entity_prev.setdefault(key, old is not None)
        open_of = self._open_of
        if open_of is not None:
            was = None if old is None else open_of(old)
            now = open_of(value)
            if was is not now and was != now:  # labels are shared tuples: mostly ``is``
                self._count(was, -1)
                self._count(now, 1)
        entities[key] = value
        wake_at = self._wake_at
        at = wake_at(value)  # as _schedule does, without the calls: a hot path
        if at is not None:
            step = at - at % _WAKE_STEP_MS
            if old is not None and not self._waking:
                was = wake_at(old)
                if was is not None and was - was % _WAKE_STEP_MS == step:
                    return  # already listed at that step (a step being woken is not)
            keys = self._wake.get(step)
            if keys is None:
                keys = self._wake[step] = []
            keys.append(key)

    def set_entity_same(self, key: str, value: Any) -> None:
        """Replace an existing entity by a value with the old one's open labels and wake time.

        For a family that knows its change moves neither (a cart event queued behind the
        cart's earlier ones): :meth:`set_entity` would ask the family four times to find
        out. From ``on_wake`` only the open labels must stay: the woken entity's wake
        time moves, and it is listed anew.
        """
        self._entity_prev.setdefault(key, True)
        self.entities[key] = value
        if self._waking:
            self._schedule(key, value)

    def drop_entity(self, key: str) -> None:
        old = self.entities.pop(key, None)
        if old is not None:
            self._entity_prev.setdefault(key, True)
            if self._open_of is not None:
                self._count(self._open_of(old), -1)

    def _labels_open(self, value: Any) -> Sequence[str] | None:
        """The labels an entity counts under in the family's open gauge, if it is open."""
        return None if self._open_of is None else self._open_of(value)

    def _count(self, labels: Sequence[str] | None, sign: int) -> None:
        if labels:
            counts = self._open_counts
            key = labels if type(labels) is tuple else tuple(labels)
            counts[key] = counts.get(key, 0) + sign

    @property
    def gauges(self) -> Counter[tuple[str, str]]:
        """The family's open-entity gauge per ``(name, label)``: open carts per segment."""
        out: Counter[tuple[str, str]] = Counter()
        name = self._gauge
        for labels, n in self._open_counts.items():
            for label in labels:  # a label whose entities all closed shows 0, not nothing
                out[(name, label)] += n
        return out

    def _schedule(self, key: str, value: Any) -> None:
        at = self._wake_at(value)
        if at is not None:
            self._list_at(key, at)

    def _list_at(self, key: str, at: int) -> None:
        """List ``key`` in the wake step of event time ``at``. (:meth:`set_entity` and
        :meth:`open_entity` do this inline: once per entity change.)"""
        step = at - at % _WAKE_STEP_MS
        keys = self._wake.get(step)
        if keys is None:  # not ``setdefault``: no empty list built per call
            keys = self._wake[step] = []
        keys.append(key)

    def _wake_up(self, watermark: int) -> None:
        """Give every entity whose wake time the watermark reached its turn.

        Steps go in time order; within a step, keys in the order they were listed (not
        sorted: ~0.7 µs per key for random ids). Order does not change a result: a
        wake touches only its own entity, and its adds and gauge moves commute.

        An entity the watermark has carried past the family's ``forget_at`` is dropped
        here, as its ``on_wake`` would (:class:`~cxpulse.streams.family.Family`): every
        response passes here once at the end of its horizon, and the three calls per
        key this saves were ~7 % of the engine on the peers' answers
        (docs/performance.md). A step whose values are all ints below the family's
        ``forget_below`` (surveys: packed responses, the usual ones) goes whole, by C
        loops (its count against the per-key path: docs/performance.md).
        """
        wake = self._wake
        steps = sorted(t for t in wake if t <= watermark)
        if not steps:
            return
        # once per woken key (every entity passes here once at its end): locals, no calls
        # but the family's
        entities = self.entities
        get = entities.get
        forgotten = self._forgotten
        forget = forgotten.append
        forget_at = self._forget_at
        open_of = self._open_of
        wake_at, on_wake = self._wake_at, self.family.on_wake
        drop = entities.pop
        bound = None
        if self._forget_below is not None and open_of is None:
            bound = self._forget_below(watermark)
        self._waking = True
        try:
            for step in steps:
                keys = dict.fromkeys(wake.pop(step))  # each once, in listed order
                if bound is not None:
                    values: list[Any] = list(map(get, keys))
                    try:  # a None (gone already) or a list among them: one at a time
                        whole = max(values, default=bound) < bound
                    except TypeError:
                        whole = False
                    if whole:
                        deque(map(drop, keys), 0)
                        forgotten.extend(keys)
                        continue
                for key in keys:
                    value = get(key)
                    if value is None:
                        continue
                    if forget_at is not None and forget_at(value) <= watermark:
                        del entities[key]  # drop_entity's work, without the calls
                        forget(key)
                        if open_of is not None:
                            self._count(open_of(value), -1)
                        continue
                    at = wake_at(value)
                    if at is None:
                        continue
                    if at <= watermark:
                        on_wake(key, value, watermark, self)
                    else:
                        self._schedule(key, value)
        finally:
            self._waking = False

    # ----------------------------------------------------------- processing
    def process(
        self, records: Iterable[InputRecord], now_wall_ms: int, topic_wm: int | None
    ) -> BatchOutput:
        """Apply one batch of records of this partition, in order."""
        out = BatchOutput()
        cfg = self.config
        policy = cfg.policy
        lateness = policy.allowed_lateness_ms
        skew = policy.max_clock_skew_ms
        future = now_wall_ms + skew  # events beyond it are invalid (docs/decisions.md)
        parse = self.family.parse
        observe = self.family.observe
        dedup = self.dedup
        was_idle = now_wall_ms - self.last_arrival_wall_ms > policy.idle_timeout_ms
        writes = out.writes
        if self._pending:
            writes.extend(self._pending.items())
            self._pending.clear()
        writes.extend((key, None) for key in self.entity_log.tombstones())
        self._expire(writes)
        seq = self.seq + 1
        applied = last_offset = self.offset
        max_ts = self.max_ts
        #: the partition's watermark (``partition_watermark``), kept with ``max_ts``
        pwm = None if max_ts is None else max_ts - lateness
        arrived = False
        outcomes = out.outcomes
        # Hot loop (once per record): locals instead of attribute lookups, counts
        # summed into ``outcomes`` after the loop, and the common not-late case
        # decided without a call; the rules are still :func:`is_late`'s.
        # the dedup test and registration inline (DedupIndex.register's two writes); the
        # rare repeat asks the index
        seen = dedup.chunk_of
        is_duplicate = dedup.is_duplicate
        pending = dedup.pending
        accepted = duplicates = 0
        records = records if isinstance(records, list) else list(records)
        decode = self._decode_many
        events: Iterable[Any] = (
            repeat(None)
            if decode is None
            else chain.from_iterable(
                decode([rec.value for rec in records[i : i + _DECODE_RUN]])
                for i in range(0, len(records), _DECODE_RUN)
            )
        )
        for rec, ev in zip(records, events):  # noqa: B905 (events: one per record, or endless)
            offset = rec.offset
            if offset <= applied:
                continue  # already applied before a restart
            last_offset = offset
            if ev is None:
                ev = parse(rec.value)
            kind = type(ev)
            if kind is Invalid:
                outcomes["invalid"] += 1
                out.dead_letters.append(self._dead_letter(rec, ev.reason, ev.error, now_wall_ms))
                continue
            ts = ev.ts
            if ts > future and kind is not Heartbeat:
                # The future bound (docs/decisions.md): one event from a clock far
                # ahead would move this partition's watermark and make every honest event
                # after it late. Heartbeats are exempt: closing windows is what they are for.
                outcomes["invalid"] += 1
                error = f"ts {ts} is {ts - now_wall_ms} ms ahead of the wall clock"
                error += f" (max_clock_skew {skew} ms)"
                out.dead_letters.append(self._dead_letter(rec, "out_of_range", error, now_wall_ms))
                continue
            arrived = True
            if kind is Heartbeat:
                if pwm is None or ts >= pwm:
                    if max_ts is None or ts > max_ts:
                        max_ts, pwm = ts, ts - lateness
                continue
            event_id = ev.event_id
            if event_id in seen and is_duplicate(event_id, pwm):
                duplicates += 1
                continue
            if (was_idle or (pwm is not None and ts < pwm)) and is_late(
                ts, pwm, topic_wm, was_idle
            ):
                outcomes["late"] += 1
                behind = (pwm if pwm is not None and ts < pwm else topic_wm) or 0
                error = f"ts {ts} is {behind - ts} ms behind the watermark {behind}"
                out.dead_letters.append(self._dead_letter(rec, "late", error, now_wall_ms))
                continue
            accepted += 1
            seen[event_id] = seq
            pending[event_id] = ts
            if max_ts is None or ts > max_ts:
                max_ts, pwm = ts, ts - lateness
            observe(ev, self)
        if accepted:
            outcomes["accepted"] += accepted
        if duplicates:
            outcomes["duplicate"] += duplicates
        self.max_ts = max_ts
        if arrived:
            self.last_arrival_wall_ms = now_wall_ms
        # Time-driven decisions (abandonments, SLA breaches, expiry) up to the effective
        # watermark: the partition's own or, only while this partition is idle, the topic's
        # (which moved on without it). Never the topic's otherwise: after a restart the
        # topic watermark can be ahead of records this partition is about to replay, and
        # deciding a timeout before replaying the event that prevents it would be wrong.
        ack = _latest(self.watermark, topic_wm if was_idle else None, self.ack)
        if ack is not None:
            self._wake_up(ack)
        if last_offset == self.offset and not writes and ack == self.ack and not self._dirty():
            return out  # nothing new (a replayed batch, or a tick that changes nothing)
        self.ack = ack
        self._fold(out, seq)
        writes.extend(
            self.entity_log.write(
                seq,
                self._entity_prev,
                self.entities,
                self._key("c", ""),
                self._chunk_context,
                self._forgotten,
            )
        )
        self._entity_prev.clear()
        self._forgotten.clear()
        chunk = self.dedup.take_chunk(seq)
        if chunk is not None:
            writes.append((self._key("d", seq), _dumps({"s": seq, "ids": chunk})))
        self.seq, self.offset = seq, last_offset
        meta: dict[str, Any] = {"s": seq, "o": last_offset, "mx": max_ts, "a": ack}
        meta["seg"] = self.segments.snapshot()
        meta["cf"] = self.entity_log.floor(seq)
        out.commit = (self.meta_key, _dumps(meta))
        return out

    def _fold(self, out: BatchOutput, seq: int) -> None:
        """Fold the batch's fine-grid increments into every grid's buckets."""
        if not self._fine:
            return
        spec = self._spec
        buckets = self.buckets
        prev: dict[tuple[int, int, str], list[Any] | None] = {}
        nonzero, merge = spec.nonzero, spec.merge_nonzero
        grids = self.config.grids
        for (fine_start, labels), deltas in self._fine.items():
            slots = nonzero(deltas)  # once, for every label and grid
            for label in labels:
                for grid in grids:
                    key = (grid, fine_start - fine_start % grid, label)
                    acc = buckets.get(key)
                    if key not in prev:
                        prev[key] = None if acc is None else spec.copy(acc)
                    if acc is None:
                        acc = buckets[key] = spec.zero()
                    merge(acc, slots)
        self._fine = {}
        for key, before in prev.items():
            grid, start, label = key
            value = buckets[key]
            out.writes.append(
                (self._key("b", grid, start, label), _dumps({"s": seq, "v": value, "pv": before}))
            )
            out.snapshots.append(BucketSnapshot(label, grid, start, spec.copy(value)))

    def _expire(self, writes: list[tuple[str, bytes | None]]) -> None:
        """Drop state that no accepted event can change any more (see module docstring)."""
        wm = self.watermark
        if wm is None:
            return
        for bucket in [k for k in self.buckets if k[1] + k[0] <= wm]:
            del self.buckets[bucket]
            writes.append((self._key("b", *bucket), None))
        for seq in self.dedup.expire(wm):
            writes.append((self._key("d", seq), None))

    def _dirty(self) -> bool:
        return bool(self._fine or self._entity_prev or self._forgotten or self.dedup.has_pending())

    def _dead_letter(
        self, rec: InputRecord, reason: str, error: str, now_wall_ms: int
    ) -> DeadLetter:
        return dead_letter(
            rec,
            topic=self.config.topic,
            partition=self.partition,
            reason=reason,
            error=error,
            at_ms=now_wall_ms,
        )
