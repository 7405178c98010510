"""Reading one partition of a cxpulse table from Faust's store (memory:// or rocksdb://)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class LazyView(Mapping[str, bytes]):
    """A partition's table records, read only if its processor actually needs restoring."""

    def __init__(self, table: Any, partition: int) -> None:
        self._table, self._partition = table, partition
        self._data: Mapping[str, bytes] | None = None

    def _load(self) -> Mapping[str, bytes]:
        if self._data is None:
            self._data = partition_records(self._table, self._partition)
        return self._data

    def __getitem__(self, key: str) -> bytes:
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def partition_records(table: Any, partition: int) -> dict[str, bytes]:
    """The records of one partition of a cxpulse table (keys start with ``"<partition>|"``).

    A ``rocksdb://`` store keeps one database per partition, and only that one is
    read and decoded; reading every partition's records (the whole table) for each
    partition restored cost as many times the work as the worker has partitions.
    The memory store is one dict: its keys are filtered by prefix.
    """
    store = table.data
    db_for_partition = getattr(store, "_db_for_partition", None)
    if db_for_partition is None:
        prefix = f"{partition}|"
        return {key: value for key, value in store.items() if key.startswith(prefix)}
    decode_key, decode_value = store._decode_key, store._decode_value
    return {
        decode_key(key): decode_value(value)
        for key, value in store._visible_items(db_for_partition(partition))
    }
