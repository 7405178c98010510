"""Property tests of the per-partition engine and the merge stage, without a broker.

The claims under test are the ones exactly-once rests on:
* batch boundaries do not matter;
* a crash at any point of the changelog (a prefix of a batch's writes made it),
  followed by a restore and a replay from any committed offset at or below the
  durable progress, gives the same state and the same final KPIs;
* the finals equal the independent oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.survey.family import SurveyFamily
from cxpulse.streams.watermarks import TimePolicy
from cxpulse.streams.windows import parse_window
from tests.oracle import Produced, classify, survey_finals
from tests.simulation import Simulation

LATENESS = 120_000
POLICY = TimePolicy(LATENESS, 10**12, 300_000)
WINDOWS = tuple(parse_window(w) for w in ("15m/1m", "1h/1m", "24h/15m"))
GRIDS = tuple(sorted({w.step_ms for w in WINDOWS}))
CONFIG = EngineConfig("survey", GRIDS, POLICY, 24 * 3_600_000, ("channel",), 20)
FAMILY = SurveyFamily(24 * 3_600_000)
T0 = 1_795_000_000_000
NOW = 1_900_000_000_000

QUESTIONS = {
    "nps": (0, 10),
    "csat": (1, 5),
    "ces": (1, 7),
    "switch": (0, 10),
    "repurchase": (0, 10),
    "overall": (0, 10),
}


@st.composite
def survey_event(draw: st.DrawFn) -> dict[str, Any]:
    question = draw(st.sampled_from(sorted(QUESTIONS)))
    lo, hi = QUESTIONS[question]
    ev: dict[str, Any] = {
        "event_id": f"e{draw(st.integers(0, 60))}",
        "type": draw(st.sampled_from(["answer", "answer", "invitation_sent"])),
        "ts": T0 + draw(st.integers(0, 90)) * 20_000,
        "channel": draw(st.sampled_from(["web", "app", "email"])),
        "survey_id": "s1",
        "response_id": f"r{draw(st.integers(0, 15))}",
        "customer_id": "c1",
    }
    if ev["type"] == "answer":
        ev.update(question=question, score=draw(st.integers(lo, hi)))
    return ev


records_strategy = st.lists(
    st.one_of(
        survey_event(),
        st.just(b"{not json"),
        st.builds(lambda ts: {"type": "heartbeat", "ts": ts}, st.integers(T0, T0 + 1_900_000)),
    ),
    min_size=1,
    max_size=120,
)


def to_raw(items: Sequence[Any]) -> list[RawRecord]:
    return [
        RawRecord(i, None, it if isinstance(it, bytes) else orjson.dumps(it), None)
        for i, it in enumerate(items)
    ]


def close(items: Sequence[Any]) -> list[Any]:
    return [*items, {"type": "heartbeat", "ts": T0 + 3 * 86_400_000}]


def split(records: list[RawRecord], cuts: Sequence[int]) -> list[list[RawRecord]]:
    points = sorted({c % (len(records) + 1) for c in cuts} | {0, len(records)})
    return [records[a:b] for a, b in pairwise(points) if b > a]


def simulation() -> Simulation:
    return Simulation(FAMILY, CONFIG, WINDOWS, POLICY, NOW)


def run(items: Sequence[Any], cuts: Sequence[int]) -> Simulation:
    pipe = simulation()
    for batch in split(to_raw(items), cuts):
        pipe.feed(batch)
    return pipe


def state_of(proc: PartitionProcessor) -> tuple[Any, ...]:
    """Semantic state, after expiry at the current watermark (when expiry runs is free)."""
    proc.process([], NOW, None)
    return (proc.buckets, proc.entities, proc.dedup.ids(), proc.max_ts, proc.offset)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records_strategy, st.lists(st.integers(0, 200), max_size=8))
def test_batch_boundaries_do_not_matter(items: list[Any], cuts: list[int]) -> None:
    items = close(items)
    whole = run(items, [])
    pieces = run(items, cuts)
    assert state_of(pieces.proc) == state_of(whole.proc)
    assert pieces.finals == whole.finals


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    records_strategy,
    st.lists(st.integers(0, 200), max_size=6),
    st.integers(0, 200),
    st.integers(0, 60),
    st.integers(0, 200),
    st.lists(st.integers(0, 200), max_size=6),
    st.booleans(),
)
def test_crash_anywhere_then_replay_gives_the_same_finals(
    items: list[Any],
    cuts: list[int],
    crash_batch: int,
    crash_write: int,
    committed: int,
    replay_cuts: list[int],
    sends_delivered: bool,
) -> None:
    """Including a crash in which the batch's state reached the changelog but its
    snapshots never reached the merge stage (they are separate record batches)."""
    items = close(items)
    reference = run(items, [])
    records = to_raw(items)
    batches = split(records, cuts)
    crash_at = crash_batch % len(batches)
    pipe = simulation()
    for i, batch in enumerate(batches):
        if i == crash_at:
            pipe.feed(batch, durable_writes=crash_write, sends_delivered=sends_delivered)
            break
        pipe.feed(batch)
    pipe.restart()
    # the consumer resumes at some committed offset at or below the durable progress
    resume = min(committed, pipe.proc.offset + 1)
    for batch in split(records[resume:], replay_cuts):
        pipe.feed(batch)
    assert state_of(pipe.proc) == state_of(reference.proc)
    for key, bodies in pipe.finals.items():
        assert all(b == reference.finals[key][0] for b in bodies), key
    assert set(pipe.finals) == set(reference.finals)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records_strategy)
def test_finals_equal_the_oracle(items: list[Any]) -> None:
    items = close(items)
    pipe = run(items, [])
    produced = [Produced(0, it, None if isinstance(it, dict) else "invalid_json") for it in items]
    accepted = classify(produced, 1, LATENESS).accepted
    want = survey_finals(accepted, [(w.name, w.size_ms, w.step_ms) for w in WINDOWS])
    got = {k: v[0] for k, v in pipe.finals.items()}
    expected = {
        f"{m}|{w}|{s}|{end}": [v, n, stats] for (m, w, s, end), (v, n, stats) in want.items()
    }
    assert got.keys() == expected.keys()
    for key, body in expected.items():
        assert orjson.dumps(got[key]) == orjson.dumps(body), key


def test_a_late_event_changes_nothing_and_is_dead_lettered() -> None:
    proc = PartitionProcessor(FAMILY, CONFIG, 0, NOW)
    first = {
        "event_id": "a",
        "type": "invitation_sent",
        "ts": T0 + 600_000,
        "channel": "web",
        "survey_id": "s",
        "response_id": "r",
        "customer_id": "c",
    }
    late = {**first, "event_id": "b", "ts": T0 + 600_000 - LATENESS - 1}
    edge = {**first, "event_id": "c", "ts": T0 + 600_000 - LATENESS}
    proc.process(to_raw([first]), NOW, None)
    before = {k: list(v) for k, v in proc.buckets.items()}
    out = proc.process([RawRecord(1, None, orjson.dumps(late), None)], NOW, None)
    assert out.outcomes == {"late": 1}
    assert proc.buckets == before and "b" not in proc.dedup
    letter = orjson.loads(out.dead_letters[0].value)
    assert letter["reason"] == "late" and letter["offset"] == 1
    out = proc.process([RawRecord(2, None, orjson.dumps(edge), None)], NOW, None)
    assert out.outcomes == {"accepted": 1}  # exactly at the watermark is not late


def test_a_ts_beyond_the_clock_skew_is_out_of_range_and_moves_no_watermark() -> None:
    """The future bound: an event more than ``max_clock_skew`` ahead of the wall clock
    is invalid, so it cannot make the honest events after it late."""
    proc = PartitionProcessor(FAMILY, CONFIG, 0, NOW)
    honest = {
        "event_id": "a",
        "type": "invitation_sent",
        "ts": NOW - 60_000,
        "channel": "web",
        "survey_id": "s",
        "response_id": "r",
        "customer_id": "c",
    }
    bound = NOW + POLICY.max_clock_skew_ms
    at_bound = {**honest, "event_id": "b", "ts": bound}
    beyond = {**honest, "event_id": "c", "ts": bound + 1}
    out = proc.process(to_raw([honest, beyond]), NOW, None)
    assert out.outcomes == {"accepted": 1, "invalid": 1}
    assert proc.max_ts == honest["ts"] and "c" not in proc.dedup
    letter = orjson.loads(out.dead_letters[0].value)
    assert letter["reason"] == "out_of_range" and letter["offset"] == 1
    assert "ahead of the wall clock" in letter["error"]
    after = {**honest, "event_id": "d", "ts": NOW - 30_000}
    out = proc.process([RawRecord(2, None, orjson.dumps(after), None)], NOW, None)
    assert out.outcomes == {"accepted": 1}  # not late: the future record moved nothing
    out = proc.process([RawRecord(3, None, orjson.dumps(at_bound), None)], NOW, None)
    assert out.outcomes == {"accepted": 1} and proc.max_ts == bound


def test_a_heartbeat_far_ahead_is_not_bounded_it_closes_windows() -> None:
    """Heartbeats are producers' control records: a replay closes its windows with one
    far past the last event (lateness + the largest window), so no future bound."""
    proc = PartitionProcessor(FAMILY, CONFIG, 0, NOW)
    far = NOW + 40 * 86_400_000
    out = proc.process(to_raw([{"type": "heartbeat", "ts": far}]), NOW, None)
    assert not out.dead_letters and proc.max_ts == far


def test_a_dead_letter_keeps_the_source_key_timestamp_and_headers() -> None:
    proc = PartitionProcessor(FAMILY, CONFIG, 0, NOW)
    headers = (("trace", b"\x00\x01"), ("trace", b"2"), ("origin", b"app"))
    bad = RawRecord(7, b"c-9", b'{"type": "answer"', 1_700_000_000_123, headers)
    keyless = RawRecord(8, None, b"[]", None)
    out = proc.process([bad, keyless], NOW, None)
    assert out.outcomes == {"invalid": 2}
    first, second = out.dead_letters
    assert (first.key, first.timestamp_ms, first.headers) == (b"c-9", 1_700_000_000_123, headers)
    assert orjson.loads(first.value)["key"] == "c-9"
    assert (second.key, second.timestamp_ms, second.headers) == (None, None, ())
    assert orjson.loads(second.value)["reason"] == "schema"
