"""The partials wire format: what a source partition writes, the merge stage reads back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cxpulse.schemas import partials

ints = st.integers(min_value=0, max_value=2**53)


@given(
    st.sampled_from(["survey", "cart", "ticket"]),
    ints,
    ints,
    st.text(min_size=1, max_size=20),
    st.lists(
        st.tuples(
            ints, ints, st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=6)
        ),
        max_size=5,
    ),
)
def test_buckets_round_trip(
    family: str,
    partition: int,
    version: int,
    segment: str,
    entries: list[tuple[int, int, list[int]]],
) -> None:
    buckets = [list(e) for e in entries]
    value = partials.encode_buckets(family, partition, version, segment, buckets)
    assert partials.decode(value) == partials.Buckets(family, partition, version, segment, buckets)
    assert partials.buckets_key(family, segment) == f"{family}|{segment}".encode()


@given(
    ints,
    ints,
    st.none() | ints,
    ints,
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
def test_status_round_trip(
    partition: int, version: int, max_ts: int | None, arrival: int, ack: int | None
) -> None:
    status = partials.Status("cart", partition, version, max_ts, arrival, ack)
    assert partials.decode(partials.encode_status(status)) == status
