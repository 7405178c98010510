"""Segment labels and the per-dimension cap (SPEC §3, segments)."""

from __future__ import annotations

import random
import string
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxpulse.streams.segments import ALL, OTHER, UNKNOWN, SegmentCap


def _cache_bound(cap: SegmentCap) -> int:
    """Admitted values plus the two raw names that never count (``unknown``, ``other``)."""
    return len(cap.dimensions) * (cap.limit + 2)


def test_all_comes_first() -> None:
    cap = SegmentCap(["channel"], 20)
    assert cap.labels(SimpleNamespace(channel="web")) == (ALL, "channel=web")


def test_labels_for_several_dimensions_in_order() -> None:
    cap = SegmentCap(["channel", "region"], 5)
    event = SimpleNamespace(channel="web", region="eu-west")
    assert cap.labels(event) == ("all", "channel=web", "region=eu-west")


def test_missing_attribute_and_non_string_are_unknown() -> None:
    cap = SegmentCap(["channel"], 3)
    assert cap.labels(SimpleNamespace()) == ("all", "channel=unknown")
    for raw in (None, 5, 1.5, b"web", ["web"], {"a": 1}, True):
        assert cap.label("channel", raw) == "channel=unknown"
    assert cap.snapshot() == {"channel": []}


def test_cap_then_other() -> None:
    cap = SegmentCap(["channel"], 3)
    assert [cap.label("channel", v) for v in ("web", "app", "email")] == [
        "channel=web",
        "channel=app",
        "channel=email",
    ]
    assert cap.label("channel", "sms") == "channel=other"
    assert cap.label("channel", "chat") == "channel=other"
    # Admitted values stay admitted; rejected ones stay rejected.
    assert cap.label("channel", "app") == "channel=app"
    assert cap.label("channel", "sms") == "channel=other"
    assert cap.snapshot() == {"channel": ["web", "app", "email"]}


def test_unknown_and_other_do_not_count_toward_the_cap() -> None:
    cap = SegmentCap(["channel"], 2)
    assert cap.label("channel", "unknown") == "channel=unknown"
    assert cap.label("channel", None) == "channel=unknown"
    assert cap.label("channel", "other") == "channel=other"
    assert cap.label("channel", "web shop") == "channel=other"  # invalid
    assert cap.label("channel", "web") == "channel=web"
    assert cap.label("channel", "app") == "channel=app"
    assert cap.label("channel", "sms") == "channel=other"
    assert cap.label("channel", "unknown") == "channel=unknown"
    assert cap.snapshot() == {"channel": ["web", "app"]}


def test_values_are_case_sensitive() -> None:
    cap = SegmentCap(["channel"], 2)
    assert cap.label("channel", "Web") == "channel=Web"
    assert cap.label("channel", "web") == "channel=web"
    assert cap.label("channel", "WEB") == "channel=other"
    assert cap.label("channel", "Unknown") == "channel=other"  # only lower-case is special


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "web shop",
        " web",
        "web\n",
        "a" * 65,
        "web/shop",
        "web=1",
        "web|x",
        "wéb",
        "web,app",
        'we"b',
        "\x00",
    ],
)
def test_invalid_values_are_other_and_take_no_slot(raw: str) -> None:
    cap = SegmentCap(["channel"], 1)
    assert cap.label("channel", raw) == "channel=other"
    assert cap.snapshot() == {"channel": []}
    assert cap.label("channel", "web") == "channel=web"


@pytest.mark.parametrize("raw", ["a", "a" * 64, "web", "WEB_2", "v1.2-beta", "_", ".", "-", "0"])
def test_valid_values(raw: str) -> None:
    cap = SegmentCap(["channel"], 1)
    assert cap.label("channel", raw) == f"channel={raw}"


def test_limit_zero_admits_nothing() -> None:
    cap = SegmentCap(["channel"], 0)
    assert cap.label("channel", "web") == "channel=other"
    assert cap.label("channel", "unknown") == "channel=unknown"
    assert cap.snapshot() == {"channel": []}


def test_dimensions_have_separate_caps() -> None:
    cap = SegmentCap(["channel", "region"], 1)
    assert cap.label("channel", "web") == "channel=web"
    assert cap.label("region", "web") == "region=web"
    assert cap.label("channel", "eu") == "channel=other"
    assert cap.label("region", "eu") == "region=other"


def test_flood_of_random_names_stays_bounded() -> None:
    """SPEC §3: a flood of random channel names must not grow memory or series."""
    rng = random.Random(7)
    cap = SegmentCap(["channel"], 20)
    alphabet = string.ascii_letters + string.digits + "_.- /é"
    seen = set()
    for _ in range(100_000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 70)))
        seen.add(cap.label("channel", raw))
    assert len(cap.snapshot()["channel"]) == 20
    assert len(seen) <= 20 + 1  # the admitted ones and other
    assert len(cap._labels) <= _cache_bound(cap), len(cap._labels)


def test_flood_after_the_cap_is_full_keeps_rejecting() -> None:
    cap = SegmentCap(["channel"], 2)
    cap.label("channel", "web")
    cap.label("channel", "app")
    for i in range(10_000):
        assert cap.label("channel", f"c{i}") == "channel=other"
        assert cap.label("channel", f"bad name {i}") == "channel=other"
    assert cap.label("channel", "web") == "channel=web"
    assert len(cap._labels) <= _cache_bound(cap)


def test_snapshot_is_a_copy() -> None:
    cap = SegmentCap(["channel"], 3)
    cap.label("channel", "web")
    snap = cap.snapshot()
    snap["channel"].append("app")
    assert cap.snapshot() == {"channel": ["web"]}


def test_restore_truncates_to_limit_and_ignores_unknown_dimensions() -> None:
    cap = SegmentCap(["channel"], 2, admitted={"channel": ["a", "b", "c"], "region": ["eu"]})
    assert cap.snapshot() == {"channel": ["a", "b"]}
    assert cap.label("channel", "c") == "channel=other"


_names = st.sampled_from(
    ["web", "app", "email", "sms", "chat", "phone", "unknown", "other", "web shop", "", "x" * 65]
) | st.text(alphabet=string.ascii_lowercase + " ", min_size=0, max_size=3)
_raws = _names | st.none() | st.integers()


@settings(max_examples=200)
@given(
    st.integers(0, 4),
    st.lists(st.tuples(st.sampled_from(["channel", "region"]), _raws), max_size=30),
    st.lists(st.tuples(st.sampled_from(["channel", "region"]), _raws), max_size=30),
)
def test_snapshot_restore_round_trip(
    limit: int,
    before: list[tuple[str, object]],
    after: list[tuple[str, object]],
) -> None:
    """A cap rebuilt from a snapshot labels every later value exactly like the original."""
    original = SegmentCap(["channel", "region"], limit)
    for dim, raw in before:
        original.label(dim, raw)
    restored = SegmentCap(["channel", "region"], limit, admitted=original.snapshot())
    assert restored.snapshot() == original.snapshot()
    for dim, raw in after:
        assert restored.label(dim, raw) == original.label(dim, raw)
        assert restored.labels(SimpleNamespace(**{dim: raw})) == original.labels(
            SimpleNamespace(**{dim: raw})
        )
    assert restored.snapshot() == original.snapshot()


@settings(max_examples=200)
@given(st.integers(0, 5), st.lists(_raws, max_size=60))
def test_cap_model(limit: int, raws: list[object]) -> None:
    """The cap against a direct model of SPEC §3, value by value in arrival order."""
    import re

    valid = re.compile(r"[A-Za-z0-9_.-]{1,64}")
    cap = SegmentCap(["channel"], limit)
    admitted: list[str] = []
    for raw in raws:
        if not isinstance(raw, str):
            expected = UNKNOWN
        elif raw in (UNKNOWN, OTHER):
            expected = raw
        elif not valid.fullmatch(raw):
            expected = OTHER
        elif raw in admitted:
            expected = raw
        elif len(admitted) < limit:
            admitted.append(raw)
            expected = raw
        else:
            expected = OTHER
        assert cap.label("channel", raw) == f"channel={expected}"
    assert cap.snapshot() == {"channel": admitted}
    assert len(cap._labels) <= _cache_bound(cap)


@settings(max_examples=300)
@given(
    st.sampled_from([(), ("channel",), ("channel", "region")]),
    st.integers(0, 4),
    st.lists(st.fixed_dictionaries({}, optional={"channel": _raws, "region": _raws}), max_size=60),
)
def test_cached_labels_equal_the_uncached_computation(
    dimensions: tuple[str, ...], limit: int, sources: list[dict[str, object]]
) -> None:
    """``labels`` caches whole tuples; a cap that never uses the cache agrees in every step.

    Sources may lack an attribute or carry non-strings; the tuple cache stays within
    the bound of the admitted values, whatever arrives.
    """
    cached, plain = SegmentCap(dimensions, limit), SegmentCap(dimensions, limit)
    for fields in sources:
        source = SimpleNamespace(**fields)
        assert cached.labels(source) == plain._compute(source)
        assert cached.snapshot() == plain.snapshot()
    bound = 1
    for _ in dimensions:
        bound *= limit + 3  # admitted values, "unknown", "other", None
    assert len(cached._tuples) <= bound


def test_a_flood_of_names_does_not_grow_the_tuple_cache() -> None:
    cap = SegmentCap(["channel"], 5)
    for i in range(10_000):
        cap.labels(SimpleNamespace(channel=f"c{i}"))
    assert len(cap._tuples) == 5
    assert cap.labels(SimpleNamespace(channel="c1")) == (ALL, "channel=c1")
    assert cap.labels(SimpleNamespace(channel="c9999")) == (ALL, "channel=other")
