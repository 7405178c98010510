"""Kept JSON bytes: the same bytes as ``orjson.dumps``, as a plain exact-size ``bytes``."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from cxpulse.schemas.encoding import dumps_kept

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSON)
def test_kept_bytes_equal_orjsons(value: Any) -> None:
    kept = dumps_kept(value)
    assert type(kept) is bytes
    assert kept == orjson.dumps(value)
    assert orjson.loads(kept) == value
