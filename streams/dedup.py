"""Dedup by ``event_id`` within the horizon (SPEC §1), persisted in per-batch chunks.

The same ``event_id`` again on a topic counts once while the first copy's ``ts``
is no more than the horizon behind the partition's watermark. Ids registered by
one batch form one *chunk* (one table record per batch, not one per event); a
chunk is dropped once its newest id is past the horizon, and with it every id
whose latest registration it holds.
"""

from __future__ import annotations

from collections.abc import Iterable


class DedupIndex:
    """The first-copy event time of every id still inside the horizon."""

    __slots__ = ("_again", "_chunks", "_first", "_pending", "horizon_ms")

    def __init__(self, horizon_ms: int) -> None:
        self.horizon_ms = horizon_ms
        self._first: dict[str, int] = {}  # event_id -> ts of its first copy
        #: ids registered again past the horizon -> the chunk of their latest registration
        #: (rare: only those need it; every other id is in exactly one chunk)
        self._again: dict[str, int] = {}
        self._chunks: dict[int, tuple[int, list[str]]] = {}  # seq -> (max ts, ids), oldest first
        self._pending: dict[str, int] = {}  # ids registered by the batch in progress

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._first

    def __len__(self) -> int:
        return len(self._first)

    def ids(self) -> set[str]:
        return set(self._first)

    @property
    def first_seen(self) -> dict[str, int]:
        """Each id's first-copy ``ts``, read-only: the engine's hot loop tests it inline."""
        return self._first

    def is_duplicate(self, event_id: str, watermark: int | None) -> bool:
        """Whether ``event_id`` was first seen no more than the horizon behind ``watermark``."""
        first = self._first.get(event_id)
        return first is not None and (watermark is None or first >= watermark - self.horizon_ms)

    def register(self, event_id: str, ts: int, seq: int) -> None:
        """Record the first copy of ``event_id`` (or a new first copy past the horizon)."""
        first = self._first
        if event_id in first:
            self._again[event_id] = seq
        first[event_id] = ts
        self._pending[event_id] = ts

    def has_pending(self) -> bool:
        return bool(self._pending)

    def take_chunk(self, seq: int) -> dict[str, int] | None:
        """The ids registered since the last call, as batch ``seq``'s chunk (None if none)."""
        if not self._pending:
            return None
        chunk, self._pending = self._pending, {}
        self._chunks[seq] = (max(chunk.values()), list(chunk))
        return chunk

    def restore(self, chunks: Iterable[tuple[int, dict[str, int]]]) -> None:
        """Load persisted chunks (any order); the latest registration of an id wins."""
        first, again = self._first, self._again
        for seq, ids in sorted(chunks, key=lambda c: c[0]):
            for event_id, ts in ids.items():
                if event_id in first:
                    again[event_id] = seq
                first[event_id] = ts
            self._chunks[seq] = (max(ids.values(), default=0), list(ids))

    def expire(self, watermark: int) -> list[int]:
        """Drop chunks wholly past the horizon; returns their sequence numbers."""
        horizon_wm = watermark - self.horizon_ms
        expired = []
        for seq, (newest, _) in self._chunks.items():  # oldest first; stop at the first live one
            if newest >= horizon_wm:
                break
            expired.append(seq)
        first, again = self._first, self._again
        for seq in expired:
            for event_id in self._chunks.pop(seq)[1]:
                if again:
                    latest = again.get(event_id)
                    if latest is not None:
                        if latest != seq:
                            continue  # registered again: a later chunk holds it
                        del again[event_id]
                first.pop(event_id, None)
        return expired
