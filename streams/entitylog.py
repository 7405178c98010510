"""Entities persisted as one changelog record per batch, not one per entity.

A batch's changed entities form one *chunk*: the records ``<partition>|c|<seq>|<part>``
(parts of at most :data:`PART_ENTRIES` entries) map each changed key to its value
after the batch, or ``null`` for an entity the batch dropped (a *marker*). Chunks
are append-only: a rolled-back batch's chunk is simply ignored on restore (its
``s`` is above the committed sequence) and every older chunk still holds what it
held, so no record needs the value it replaced.

On restore the chunks are read oldest first and the newest entry of each key wins.
An entry is *latest* while no newer chunk has one for its key. A chunk is *dead*,
and its records are deleted, when

* it has no latest entry at all, or
* it has no latest value, and every older chunk is dead (its markers then shadow
  nothing: a key's stale values exist only in older chunks).

A sparse oldest chunk (at most half of its entries latest values) is *compacted*:
its latest values are written again into the current batch's chunk, so that one
long-lived entity does not keep a run of newer marker chunks alive.

A chunk that dies during batch ``n`` is deleted by batch ``n + 1``: batch ``n`` may
still be rolled back, and restoring the state before it needs the chunk. Deleted
chunks go out oldest first, so after a crash between two of those deletes no
surviving chunk holds a value that only a deleted marker shadowed.

Memory per entity: one slot in a ``key -> chunk`` map and a reference in its
chunk's key list; the values themselves live in the engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cxpulse.streams.encoding import dumps_kept

#: entries per chunk record; a record is split further when it would exceed
#: :data:`MAX_RECORD_BYTES` (Kafka's default ``max.message.bytes`` is 1 MiB)
PART_ENTRIES = 4_096
MAX_RECORD_BYTES = 512 * 1024


class _Chunk:
    """One batch's entries: their keys, how many are latest values and markers, and the
    records that hold them."""

    __slots__ = ("keys", "live", "marks", "records")

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.live = 0
        self.marks = 0
        self.records: list[str] = []


class EntityLog:
    """Which chunk holds each entity's latest entry, and which chunks can go."""

    __slots__ = ("_chunks", "_dead", "_where")

    def __init__(self) -> None:
        self._where: dict[str, int] = {}  # key -> chunk of its latest entry
        self._chunks: dict[int, _Chunk] = {}  # surviving chunks, oldest first
        self._dead: list[tuple[int, list[str]]] = []  # died, not yet deleted

    def __len__(self) -> int:
        return len(self._chunks)

    # ------------------------------------------------------------ restore
    def restore(self, parts: Iterable[tuple[int, str, Mapping[str, Any]]]) -> dict[str, Any]:
        """Load committed chunk records ``(seq, record key, entries)``; the entities."""
        values: dict[str, Any] = {}
        where, chunks = self._where, self._chunks
        for seq, record, entries in sorted(parts, key=lambda p: (p[0], p[1])):
            chunk = chunks.get(seq)
            if chunk is None:
                chunk = chunks[seq] = _Chunk()
            chunk.records.append(record)
            for key, value in entries.items():
                old = where.get(key)
                if old is not None:
                    self._release(old, values.get(key) is None, check=False)
                where[key] = seq
                chunk.keys.append(key)
                if value is None:
                    chunk.marks += 1
                    values.pop(key, None)
                else:
                    chunk.live += 1
                    values[key] = value
        for seq in [s for s, c in chunks.items() if c.live == 0 and c.marks == 0]:
            self._die(seq)
        self._drop_oldest_markers()
        return values

    def keys_in(self, seq: int) -> list[str]:
        """The keys whose latest entry is in chunk ``seq`` (e.g. to rewrite them)."""
        chunk = self._chunks.get(seq)
        where = self._where
        return [] if chunk is None else [k for k in chunk.keys if where.get(k) == seq]

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
    ) -> list[tuple[str, bytes]]:
        """Batch ``seq``'s chunk records (keys ``prefix + "<seq>|<part>"``).

        ``changed`` maps each key the batch touched to whether it existed before the
        batch; ``entities`` holds the values after it.
        """
        where, chunks = self._where, self._chunks
        chunk = _Chunk()
        entries: dict[str, Any] = {}
        live = marks = 0
        for key, existed in changed.items():  # once per changed entity: calls inlined
            value = entities.get(key)
            if value is None:
                if not existed:
                    continue  # absent before and after: its latest entry (if any) says so
                marks += 1
            else:
                live += 1
            old = where.get(key)
            if old is not None:
                held = chunks[old]
                if not existed:
                    held.marks -= 1
                else:
                    held.live -= 1
                if held.live == 0 and held.marks == 0:
                    self._die(old)
            where[key] = seq
            entries[key] = value
        budget = max(1_024, 2 * len(entries))
        for old, oldest in list(chunks.items()):
            if oldest.live == 0:
                self._drop_markers(old, oldest)
                self._die(old)
                continue
            if oldest.live * 2 > len(oldest.keys) or oldest.live > budget:
                break
            budget -= oldest.live  # compact: its latest values move to this chunk
            for key in oldest.keys:
                if where.get(key) == old:
                    value = entities.get(key)
                    if value is None:
                        del where[key]  # a marker of the oldest chunk shadows nothing
                    else:
                        where[key] = seq
                        entries[key] = value
                        live += 1
            self._die(old)
        if not entries:
            return []
        chunk.live, chunk.marks = live, marks
        chunk.keys = list(entries)
        out: list[tuple[str, bytes]] = []
        if len(entries) <= PART_ENTRIES:
            self._encode(seq, entries, prefix, out)
        else:
            items = list(entries.items())
            for start in range(0, len(items), PART_ENTRIES):
                self._encode(seq, dict(items[start : start + PART_ENTRIES]), prefix, out)
        chunk.records = [record for record, _ in out]
        chunks[seq] = chunk
        if live == 0 and next(iter(chunks)) == seq:
            self._drop_markers(seq, chunk)  # only markers, nothing older: they shadow nothing
            self._die(seq)  # deleted by the next batch
        return out

    # ------------------------------------------------------------ internals
    def _encode(
        self, seq: int, entries: dict[str, Any], prefix: str, out: list[tuple[str, bytes]]
    ) -> None:
        raw = dumps_kept({"s": seq, "e": entries})
        if len(raw) > MAX_RECORD_BYTES and len(entries) > 1:
            items = list(entries.items())
            half = len(items) // 2
            self._encode(seq, dict(items[:half]), prefix, out)
            self._encode(seq, dict(items[half:]), prefix, out)
            return
        out.append((f"{prefix}{seq}|{len(out)}", raw))

    def _release(self, seq: int, marker: bool, check: bool = True) -> None:
        """A key's latest entry in chunk ``seq`` was superseded."""
        chunk = self._chunks[seq]
        if marker:
            chunk.marks -= 1
        else:
            chunk.live -= 1
        if check and chunk.live == 0 and chunk.marks == 0:
            self._die(seq)

    def _drop_markers(self, seq: int, chunk: _Chunk) -> None:
        where = self._where
        for key in chunk.keys:
            if where.get(key) == seq:
                del where[key]

    def _drop_oldest_markers(self) -> None:
        for seq, chunk in list(self._chunks.items()):
            if chunk.live:
                return
            self._drop_markers(seq, chunk)
            self._die(seq)

    def _die(self, seq: int) -> None:
        chunk = self._chunks.pop(seq)
        self._dead.append((seq, chunk.records))
