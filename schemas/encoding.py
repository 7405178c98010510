"""JSON bytes for values held beyond the call: table records, and a batch's outgoing records.

Measured here (orjson 3.13, CPython 3.11, glibc 2.36): each ``orjson.dumps`` result
keeps a ~4 KiB allocation alive however short the JSON. Kept in a table, a million
200-byte records held ~4 GiB of RSS instead of ~0.2 GiB. A batch holds its
records and changelog keys until they are produced, often a thousand and more:
those blocks set a worker's peak RSS (the peers' answers at 3.5: 180-201 MB
against 175-179 MB copied, docs/peers.md), and with a large heap each of a
thousand held costs ~1.2 µs against ~0.4 µs copied (a hundred held: 0.24 against
0.45). So every value that outlives its statement is copied into an exact-size
``bytes`` (one memcpy).
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps_kept(obj: Any) -> bytes:
    """``orjson.dumps`` for a value that is kept: in a store, or in a list of records to send."""
    return memoryview(orjson.dumps(obj)).tobytes()
