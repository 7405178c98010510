"""Dedup by ``event_id`` within the horizon (SPEC §1), persisted in per-batch chunks.

The same ``event_id`` again on a topic counts once while the first copy's ``ts``
is no more than the horizon behind the partition's watermark. Ids registered by
one batch form one *chunk* (one table record per batch, not one per event); a
chunk is dropped once its newest id is past the horizon, and with it every id
whose latest registration it holds.

Memory per id, at production volumes the largest state a worker holds (every
event of a day with the default horizon): one slot in a dict from the id to the
sequence number of its chunk (one ``int`` object per chunk, shared by all of its
ids), a reference in the chunk's id list, and its ``ts`` in the chunk's 8-byte
array. An ``int`` per id, 32 bytes, is not needed: an id's ``ts`` is read only when
a copy of it comes again and its chunk straddles the horizon's edge, and then
found in its chunk. ~55 bytes per id besides the id string itself, against ~82
with each ``ts`` held as an ``int`` in the dict (tracemalloc, 200k ids).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import repeat
from struct import calcsize, pack

#: struct's code for an 8-byte time: the C ``long`` where it is 8 bytes (LP64: Linux,
#: macOS), read by ``PyLong_AsLong``; ``long long``'s conversion goes through
#: ``_PyLong_AsByteArray`` for any int above 2**30, ~225 instructions a time (callgrind)
_TIME = "l" if calcsize("l") == 8 else "q"


class _Chunk:
    """The ids one batch registered, in order, with their event times."""

    __slots__ = ("_where", "ids", "newest", "oldest", "times")

    def __init__(self, registered: dict[str, int]) -> None:
        times = registered.values()
        self.ids = list(registered)
        # through struct, not array("q", times): array converts each int through a
        # format parser, ~3x the cost per id (valgrind --tool=callgrind)
        self.times = array("q", pack(f"{len(times)}{_TIME}", *times))
        self.newest = max(times, default=0)  # over the dict's ints: no int built per id
        self.oldest = min(times, default=0)
        self._where: dict[str, int] | None = None

    def ts_of(self, event_id: str) -> int:
        """An id's ``ts``: by a position map built at the first such question, so a
        stream of copies of day-old events (a replay) costs one pass per chunk, not
        one per copy; only chunks that straddle the horizon's edge are ever asked."""
        where = self._where
        if where is None:
            where = self._where = {event_id: i for i, event_id in enumerate(self.ids)}
        return self.times[where[event_id]]


class DedupIndex:
    """The chunk of every id still inside the horizon (see the module docstring)."""

    __slots__ = ("_chunks", "_first", "_pending", "horizon_ms")

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        #: event_id -> the sequence number of the chunk holding its latest registration
        self._first: dict[str, int] = {}
        self._chunks: dict[int, _Chunk] = {}  # by sequence number, oldest first
        self._pending: dict[str, int] = {}  # event_id -> ts, for the batch in progress

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._first

    def __len__(self) -> int:
        return len(self._first)

    def ids(self) -> set[str]:
        return set(self._first)

    @property
    def chunk_of(self) -> dict[str, int]:
        """Each id's chunk: the engine's hot loop tests membership and registers inline
        (with :attr:`pending`)."""
        return self._first

    @property
    def pending(self) -> dict[str, int]:
        """The batch in progress' ids and their ``ts``: with :attr:`chunk_of`, what
        :meth:`register` writes, for the engine's hot loop to write inline (until
        :meth:`take_chunk`, which starts a new one)."""
        return self._pending

    def first_ts(self, event_id: str) -> int | None:
        """The ``ts`` of ``event_id``'s latest registration (its first copy), if held."""
        seq = self._first.get(event_id)
        if seq is None:
            return None
        chunk = self._chunks.get(seq)
        return self._pending[event_id] if chunk is None else chunk.ts_of(event_id)

    def is_duplicate(self, event_id: str, watermark: int | None) -> bool:
        """Whether ``event_id`` was first seen no more than the horizon behind ``watermark``."""
        seq = self._first.get(event_id)
        if seq is None:
            return False
        if watermark is None:
            return True
        edge = watermark - self.horizon_ms
        chunk = self._chunks.get(seq)
        if chunk is None:  # registered by the batch in progress
            return self._pending[event_id] >= edge
        if chunk.oldest >= edge:  # the whole chunk is inside: no need for the id's own ts
            return True
        if chunk.newest < edge:
            return False
        return chunk.ts_of(event_id) >= edge  # the chunk straddles the edge

    def register(self, event_id: str, ts: int, seq: int) -> None:
        """Record the first copy of ``event_id`` (or a new first copy past the horizon)."""
        self._first[event_id] = seq
        self._pending[event_id] = ts

    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_chunk(self, seq: int) -> dict[str, int] | None:
        """The ids registered since the last call, as batch ``seq``'s chunk (None if none)."""
        if not self._pending:
            return None
        chunk, self._pending = self._pending, {}
        self._chunks[seq] = _Chunk(chunk)
        return chunk

    def restore(self, chunks: Iterable[tuple[int, dict[str, int]]]) -> None:
        """Load persisted chunks (any order); the latest registration of an id wins."""
        first = self._first
        for seq, ids in sorted(chunks, key=lambda c: c[0]):
            for event_id in ids:
                first[event_id] = seq
            self._chunks[seq] = _Chunk(ids)

    def expire(self, watermark: int) -> list[int]:
        """Drop chunks wholly past the horizon; returns their sequence numbers."""
        edge = watermark - self.horizon_ms
        expired = []
        for seq, chunk in self._chunks.items():  # oldest first; stop at the first live one
            if chunk.newest >= edge:
                break
            expired.append(seq)
        first = self._first
        for seq in expired:
            ids = self._chunks.pop(seq).ids
            # one C loop over the chunk's ids (every id passes here once); the ids
            # registered again since (held by a later chunk) are put back
            latest = list(map(first.pop, ids, repeat(None)))
            if latest.count(seq) != len(latest):
                for event_id, later in zip(ids, latest, strict=True):
                    if later is not None and later != seq:
                        first[event_id] = later
        return expired
