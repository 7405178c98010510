"""Entities persisted as one changelog record per batch, not one per entity.

A batch's changed entities form one *chunk*: the records ``<partition>|c|<seq>|<part>``
(parts of at most :data:`PART_ENTRIES` entries and about :data:`MAX_RECORD_BYTES`)
map each changed key to its value after the batch, or ``null`` for an entity the
batch dropped (a *marker*). Chunks are append-only: a rolled-back batch's chunk is
simply ignored on restore (its ``s`` is above the committed sequence) and every
older chunk still holds what it held, so no record needs the value it replaced.

On restore the chunks are read oldest first and the newest entry of each key wins.
A chunk is *dead*, and its records are deleted, once none of its values is the
newest entry of its key and every older chunk is dead: its superseded values are
shadowed by newer chunks, which survive it, and its markers shadow values only
older chunks could hold.

The oldest chunk is *compacted* (its newest values written again into the current
batch's chunk, at most a budget per batch) when at most half of its values are
still newest, or when more than :data:`MAX_CHUNKS` chunks survive: so a few
long-lived entities never keep a growing run of newer chunks alive.

A chunk that dies during batch ``n`` is deleted by batch ``n + 1``: batch ``n`` may
still be rolled back, and restoring the state before it needs the chunk. Deleted
chunks go out oldest first, so after a crash between two of those deletes every
surviving chunk is still shadowed as before.

Chunks only ever die from the front, so the dead ones are exactly those below
the *floor* (:meth:`EntityLog.floor`), which the partition's meta record carries
with the batch: a restore ignores (and deletes again) the records of chunks below
it. So a dropped entity needs a marker only while its value's chunk survives the
batch: when the drop kills that chunk (entities that go in the order they came,
such as survey responses at the end of their horizon), no marker is written.

Memory per entity: one slot in a ``key -> chunk`` map and a reference in its
chunk's key list; the values themselves live in the engine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import compress, filterfalse, islice, repeat
from operator import is_, is_not, not_
from typing import Any

from cxpulse.schemas.encoding import dumps_kept

#: entries per chunk record; a record is split further when it would exceed
#: :data:`MAX_RECORD_BYTES` (Kafka's default ``max.message.bytes`` is 1 MiB)
PART_ENTRIES = 4_096
MAX_RECORD_BYTES = 512 * 1024
#: surviving chunks beyond which the oldest is compacted however dense it is
MAX_CHUNKS = 256
#: values moved by compaction per batch, at least (or twice the batch's own entries)
MIN_COMPACTION = 512


class _Chunk:
    """One batch's values: their keys, how many are still the newest entry of their
    key, how far compaction got, and the records that hold them."""

    __slots__ = ("cursor", "keys", "live", "records")

    def __init__(self, keys: list[str], live: int, records: list[str]) -> None:
        self.keys = keys
        self.live = live
        self.cursor = 0
        self.records = records


class EntityLog:
    """Which chunk holds each entity's value, and which chunks can go."""

    __slots__ = ("_chunks", "_dead", "_where")

    def __init__(self) -> None:
        self._where: dict[str, int] = {}  # key -> chunk of its value (absent: dropped)
        self._chunks: dict[int, _Chunk] = {}  # surviving chunks, oldest first
        self._dead: list[tuple[int, list[str]]] = []  # died, not yet deleted

    def __len__(self) -> int:
        return len(self._chunks)

    # ------------------------------------------------------------ restore
    def restore(
        self, parts: Iterable[tuple[int, str, Mapping[str, Any]]], floor: int = 0
    ) -> dict[str, Any]:
        """Load committed chunk records ``(seq, record key, entries)``; the entities.

        ``floor`` is the committed :meth:`floor`: records of chunks below it are dead
        (their deletes were lost in a crash), ignored and deleted again.
        """
        values: dict[str, Any] = {}
        where, chunks = self._where, self._chunks
        dead: dict[int, list[str]] = {}
        for seq, record, entries in sorted(parts, key=lambda p: (p[0], p[1])):
            if seq < floor:
                dead.setdefault(seq, []).append(record)
                continue
            chunk = chunks.get(seq)
            if chunk is None:
                chunk = chunks[seq] = _Chunk([], 0, [])
            chunk.records.append(record)
            for key, value in entries.items():
                old = where.pop(key, None)
                if old is not None:
                    chunks[old].live -= 1
                if value is None:
                    values.pop(key, None)
                else:
                    values[key] = value
                    where[key] = seq
                    chunk.keys.append(key)
                    chunk.live += 1
        self._dead.extend(dead.items())
        self._drop_front()
        return values

    def keys_in(self, seq: int) -> list[str]:
        """The keys whose value is in chunk ``seq`` (e.g. to rewrite them)."""
        chunk = self._chunks.get(seq)
        where = self._where
        return [] if chunk is None else [k for k in chunk.keys if where.get(k) == seq]

    def floor(self, seq: int) -> int:
        """After batch ``seq``: every chunk below this sequence number is dead (the
        oldest surviving chunk's, or ``seq + 1`` when none survives)."""
        return next(iter(self._chunks), seq + 1)

    # -------------------------------------------------------------- batches
    def tombstones(self) -> list[str]:
        """The records of chunks that died before this batch, oldest chunk first."""
        if not self._dead:
            return []
        dead, self._dead = sorted(self._dead, key=lambda d: d[0]), []
        return [record for _, records in dead for record in records]

    def write(
        self,
        seq: int,
        changed: Mapping[str, bool],
        entities: Mapping[str, Any],
        prefix: str,
        context: Callable[[Iterable[Any]], Any] | None = None,
        forgotten: Sequence[str] = (),
    ) -> list[tuple[str, bytes]]:
        """Batch ``seq``'s chunk records (keys ``prefix + "<seq>|<part>"``).

        ``changed`` maps each key the batch touched to whether it existed before the
        batch; ``entities`` holds the values after it. ``forgotten`` lists keys the
        batch dropped without touching them otherwise (they existed before it; a key
        also in ``changed`` is decided there). ``context``, if any, gives what a
        record's values name (a family's ``chunk_context``,
        :class:`~cxpulse.streams.family.Family`); when not ``None`` it goes into the
        record as ``x``.

        Every key passes here once per batch that changes it (every survey response
        twice: when it opens and when it is forgotten), so the per-key work is done by
        C loops over the batch's keys (``map``, ``compress``, ``Counter``), not by a
        bytecode loop.
        """
        where, chunks = self._where, self._chunks
        touched = list(changed)
        values = list(map(entities.get, touched))
        if None in values:  # some dropped (or set and dropped again) by the batch
            present = list(map(is_not, values, repeat(None)))
            kept = list(compress(touched, present))
            kept_values = list(compress(values, present))
            # dropped, and existed before the batch (absent before and after: its latest
            # entry, if any, already says so)
            gone = list(filter(changed.__getitem__, compress(touched, map(not_, present))))
        else:
            kept, kept_values, gone = touched, values, []
        if forgotten:
            gone.extend(filterfalse(changed.__contains__, forgotten))
        own = len(kept)  # the batch's own values: kept[:own], kept_values
        #: the chunk's other entries (markers, compacted values), after the batch's own
        entries: dict[str, Any] = {}
        # only a key that existed before the batch can have a value in a chunk (``where``
        # holds exactly the keys that exist between batches): for new ones (every
        # survey response once) no lookup in that large map
        existed = list(compress(kept, map(changed.__getitem__, kept)))
        if existed:
            olds = list(map(where.get, existed))
            if olds.count(None) != len(olds):  # values replaced: their chunks hold one less
                self._release(Counter(olds))
        where.update(dict.fromkeys(kept, seq))
        keys = kept
        #: the chunk each dropped key's value was in, if any
        gone_from: list[int | None] = list(map(where.pop, gone, repeat(None)))
        if gone:
            if None in gone_from:  # existed, yet no chunk holds it: a marker says so
                entries.update(dict.fromkeys(compress(gone, map(is_, gone_from, repeat(None)))))
            self._release(Counter(gone_from))
        self._drop_front()
        budget = max(MIN_COMPACTION, 2 * (own + len(entries)))
        while chunks and budget > 0:
            old, oldest = next(iter(chunks.items()))
            if oldest.live * 2 > len(oldest.keys) and len(chunks) <= MAX_CHUNKS:
                break
            held, i = oldest.keys, oldest.cursor  # compact: its values move to this chunk
            while i < len(held) and budget > 0:
                key = held[i]
                i += 1
                if where.get(key) == old:
                    where[key] = seq
                    entries[key] = entities[key]
                    keys.append(key)
                    oldest.live -= 1
                    budget -= 1
            oldest.cursor = i
            if oldest.live:
                break
            self._die(old)
            self._drop_front()
        if gone:
            # a dropped key whose value's chunk survives this batch: a marker shadows it
            surviving = {old for old in set(gone_from) if old is not None and old in chunks}
            if surviving:
                entries.update(
                    dict.fromkeys(
                        k for k, old in zip(gone, gone_from, strict=True) if old in surviving
                    )
                )
        total = own + len(entries)
        if not total:
            return []
        out: list[tuple[str, bytes]] = []
        # parts of PART_ENTRIES, in order: the batch's own values, then the other entries;
        # each part's dict built once, from slices of the lists
        for start in range(0, total, PART_ENTRIES):
            end = start + PART_ENTRIES
            if end <= own:
                part = dict(zip(kept[start:end], kept_values[start:end], strict=True))
            else:
                part = dict(zip(kept[start:own], kept_values[start:own], strict=True))
                part.update(islice(entries.items(), max(start - own, 0), end - own))
            self._encode(seq, part, prefix, out, context)
        chunks[seq] = _Chunk(keys, len(keys), [record for record, _ in out])
        self._drop_front()  # only markers, nothing older: deleted by the next batch
        return out

    def _release(self, counts: Counter[int | None]) -> None:
        """Chunks' values that are no longer their keys' newest: per chunk, not per key."""
        chunks = self._chunks
        for old, n in counts.items():
            if old is not None:
                chunks[old].live -= n

    # ------------------------------------------------------------ internals
    def _encode(
        self,
        seq: int,
        entries: dict[str, Any],
        prefix: str,
        out: list[tuple[str, bytes]],
        context: Callable[[Iterable[Any]], Any] | None = None,
    ) -> None:
        record = {"s": seq, "e": entries}
        named = None if context is None else context(entries.values())
        if named is not None:
            record["x"] = named
        raw = dumps_kept(record)
        if len(raw) > MAX_RECORD_BYTES and len(entries) > 1:
            items = list(entries.items())
            half = len(items) // 2
            self._encode(seq, dict(items[:half]), prefix, out, context)
            self._encode(seq, dict(items[half:]), prefix, out, context)
            return
        out.append((f"{prefix}{seq}|{len(out)}", raw))

    def _drop_front(self) -> None:
        """The oldest chunks without a newest value die (nothing older survives them)."""
        chunks = self._chunks
        while chunks:
            seq, chunk = next(iter(chunks.items()))
            if chunk.live:
                return
            self._die(seq)

    def _die(self, seq: int) -> None:
        chunk = self._chunks.pop(seq)
        self._dead.append((seq, chunk.records))
