"""A survey response held as one int (``streams.families.survey.packed``).

* every list-form incarnation without a predecessor and with at most one paired
  answer, at its first ``ts``, packs to an int, and every other value stays the
  list it was; unpacking gives back an equal list with the shared segment list;
* the form is canonical: packing the list form of a packed value gives the same int;
* segments beyond the homes a packed value can name keep the list form;
* a packed value written by another process is read through the table of segments
  its record carries;
* through the engine, the peers' kind of response (one nps answer) is an int, its
  changelog record holds it with that table, and a restore holds the int again.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.entitylog import EntityLog
from cxpulse.streams.families.survey import packed
from cxpulse.streams.families.survey.family import SurveyFamily
from cxpulse.streams.watermarks import TimePolicy

LABELS = [("all", "channel=web"), ("all", "channel=app"), ("all",)]
PAIRED_AT = (2, 4, 6, 8)


@st.composite
def incarnations(draw: st.DrawFn) -> list[Any]:
    """A list-form incarnation: ``[ts, labels]`` or with its eight paired-answer slots."""
    ts = draw(st.integers(-(2**45), 2**45))
    labels = packed.home_list(draw(st.sampled_from(LABELS)))
    if draw(st.booleans()):
        return [ts, labels]
    value: list[Any] = [ts, labels, None, None, None, None, None, None, None, None]
    for at in draw(st.sets(st.sampled_from(PAIRED_AT), max_size=4)):
        value[at] = draw(st.sampled_from([ts, ts + 1, ts - 1]))
        value[at + 1] = draw(st.integers(0, 10))
    if all(v is None for v in value[2:]):
        return value[:2]  # the canonical form of no paired answer
    return value


def _packs(value: list[Any]) -> bool:
    answered = [at for at in PAIRED_AT if len(value) > 2 and value[at] is not None]
    return len(answered) == 0 or (len(answered) == 1 and value[answered[0]] == value[0])


@given(incarnations())
def test_an_incarnation_packs_exactly_when_it_has_at_most_one_answer_at_its_first_ts(
    value: list[Any],
) -> None:
    got = packed.pack(value)
    if _packs(value):
        assert type(got) is int
        assert packed.first_ts(got) == value[0]
        back = packed.unpack(got)
        assert back == value
        assert back[1] is packed.registered_home(tuple(value[1]))  # the shared list
        assert packed.pack(back) == got  # canonical
        # another process's record names the segments by another index
        index = (got >> packed.HOME_SHIFT) % packed.MAX_HOMES
        moved = got + (1 << packed.HOME_SHIFT)
        assert packed.homes_named([got]) == {str(index): value[1]}
        assert packed.load(moved, {str(index + 1): value[1]}) == got
        # an earlier version's record carries its process's whole list of homes
        earlier = [["all", "x"]] * (index + 1) + [value[1]]
        assert packed.load(moved, earlier) == got
    else:
        assert got is value
        assert packed.load(got, []) is value


@given(incarnations(), incarnations())
def test_a_value_with_its_previous_incarnation_stays_a_list(
    value: list[Any], prev: list[Any]
) -> None:
    head = value if len(value) > 2 else [*value, *(None,) * 8]
    composed = [*head, prev]
    assert packed.pack(composed) is composed


def test_segments_beyond_the_homes_a_packed_value_can_name_keep_the_list_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(packed, "_HOMES", {})
    monkeypatch.setattr(packed, "_BY_INDEX", [])
    monkeypatch.setattr(packed, "_BITS", {})
    homes = [packed.home_list(("all", f"channel=c{i}")) for i in range(packed.MAX_HOMES + 2)]
    assert type(packed.pack([5, homes[packed.MAX_HOMES - 1]])) is int
    over = [5, homes[packed.MAX_HOMES]]
    assert packed.pack(over) is over
    assert packed.home_bits(("all", f"channel=c{packed.MAX_HOMES + 1}")) is None


def _answer(i: int, ts: int, question: str = "nps", score: int = 9) -> RawRecord:
    value = {
        "event_id": f"e{i}",
        "type": "answer",
        "ts": ts,
        "survey_id": "s",
        "response_id": f"r{i // 2}",
        "customer_id": "c",
        "channel": "web",
        "question": question,
        "score": score,
    }
    return RawRecord(i, f"r{i // 2}".encode(), orjson.dumps(value), None)


def test_through_the_engine_a_one_answer_response_is_an_int_in_memory_and_on_record() -> None:
    config = EngineConfig(
        "survey", (60_000,), TimePolicy(120_000, 10**12, 300_000), 86_400_000, ("channel",), 20
    )
    family = SurveyFamily(86_400_000)
    t0 = 1_795_000_000_000
    packed.home_list(("all", "channel=elsewhere"))  # a home no value of the record uses
    proc = PartitionProcessor(family, config, 0, t0 + 10**9)
    # r0: one nps answer; r1: nps then switch a second later (two answers: a list)
    records = [_answer(0, t0), _answer(2, t0 + 5), _answer(3, t0 + 1_005, "switch", 3)]
    out = proc.process(records, t0 + 10**9, None)
    assert type(proc.entities["r0"]) is int
    assert type(proc.entities["r1"]) is list
    (record,) = [orjson.loads(v) for k, v in out.writes if k.startswith("0|c|") and v]
    assert record["e"]["r0"] == proc.entities["r0"]
    # the record names the one home its int uses, whatever else the process has seen
    index = (proc.entities["r0"] >> packed.HOME_SHIFT) % packed.MAX_HOMES
    assert record["x"] == {str(index): ["all", "channel=web"]}
    assert record["e"]["r1"][6:8] == [t0 + 1_005, 3]
    table = dict(out.writes)
    assert out.commit is not None
    table[out.commit[0]] = out.commit[1]
    restored = PartitionProcessor.restore(family, config, 0, table, t0 + 10**9)
    assert restored.entities == proc.entities
    assert type(restored.entities["r0"]) is int
    # a record of the earlier form carries the writer's whole list of homes: read as well
    (key,) = [k for k, v in out.writes if k.startswith("0|c|") and v]
    whole = [["all", "channel=other"]] * (index + 3)
    whole[index] = ["all", "channel=web"]
    table[key] = orjson.dumps({**record, "x": whole})
    earlier = PartitionProcessor.restore(family, config, 0, table, t0 + 10**9)
    assert earlier.entities == proc.entities


def test_a_chunk_record_names_the_homes_of_its_own_values_only() -> None:
    ts = 1_795_000_000_000
    web = packed.pack([ts, packed.home_list(("all", "channel=web"))])
    app = packed.pack([ts, packed.home_list(("all", "channel=app"))])
    listed = [ts, packed.home_list(("all", "channel=web")), 0]  # not packed
    named = packed.homes_named
    log = EntityLog()
    [(_, raw)] = log.write(1, {"a": False, "b": False}, {"a": web, "b": listed}, "c|", named)
    index = (web >> packed.HOME_SHIFT) % packed.MAX_HOMES
    assert orjson.loads(raw)["x"] == {str(index): ["all", "channel=web"]}
    [(_, raw)] = log.write(2, {"c": False}, {"a": web, "b": listed, "c": app}, "c|", named)
    assert list(orjson.loads(raw)["x"].values()) == [["all", "channel=app"]]
    [(_, raw)] = EntityLog().write(1, {"b": False}, {"b": listed}, "c|", named)
    assert "x" not in orjson.loads(raw)  # no packed value: nothing named
