"""What a confirmed batch leaves in the table store (``Deliverer.apply``)."""

from __future__ import annotations

from typing import Any

import faust

from cxpulse.agents.worker.delivery import Changelog, Deliverer


class _DiskStore(dict[str, bytes]):
    """A store that outlives the process (what ``rocksdb://`` is to ``apply``)."""

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.offset = offset


class _Table:
    def __init__(self, data: Any) -> None:
        self.data = data


def test_a_memory_store_gets_the_deletes_but_not_the_values() -> None:
    """Faust's recovery replays the changelog into a memory store before it is read,
    so it keeps no copy of what the engine holds; a delete still frees what the last
    recovery put there."""
    app = faust.App("cxpulse-test-delivery", store="memory://")
    table = app.Table("state")
    store = table.data
    store["0|c|1|0"] = b"recovered"
    store["0|m"] = b"meta"
    writes = [("0|c|1|0", None), ("0|c|2|0", b"new"), ("0|m", b"meta2")]
    Deliverer.apply(Changelog(table, writes, []))
    assert dict(store.items()) == {"0|m": b"meta"}


def test_a_store_on_disk_gets_every_write() -> None:
    store = _DiskStore({"0|c|1|0": b"old"})
    writes = [("0|c|1|0", None), ("0|c|2|0", b"new"), ("0|m", b"meta2")]
    Deliverer.apply(Changelog(_Table(store), writes, []))
    assert store == {"0|c|2|0": b"new", "0|m": b"meta2"}
