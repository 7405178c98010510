"""The order of the benches' rounds: every round runs every contender once, and no
contender keeps its place or its neighbour from round to round."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import run as bench_run
from benchmarks.peers import run as peers_run
from benchmarks.rounds import round_order

NAMES = st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=8, unique=True)


@given(NAMES, st.integers(min_value=1, max_value=40))
def test_each_round_runs_every_contender_once(names: list[str], round_no: int) -> None:
    order = round_order(names, round_no)
    assert sorted(order) == sorted(names)
    if round_no == 1:
        assert order == names  # a single round runs as asked


def test_two_contenders_go_abba() -> None:
    orders = ["".join(round_order("ab", r)) for r in range(1, 9)]
    assert orders == ["ab", "ba", "ba", "ab", "ab", "ba", "ba", "ab"]
    for start in range(len(orders) - 3):  # any four consecutive rounds: each first twice
        assert [o[0] for o in orders[start : start + 4]].count("a") == 2


@given(NAMES.filter(lambda names: len(names) >= 2))
def test_no_contender_keeps_its_place_or_its_predecessor(names: list[str]) -> None:
    orders = [round_order(names, r) for r in (1, 2, 3)]
    for name in names:
        assert len({order.index(name) for order in orders}) > 1, name
        before = {order[order.index(name) - 1] if order.index(name) else None for order in orders}
        assert len(before) > 1, name


def test_rounds_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        round_order(["a"], 0)
    assert round_order([], 3) == []


def test_the_peers_bench_runs_each_round_in_its_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran: list[str] = []

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    def contender(name: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        ran.append(name)
        return {"name": name, "status": "ok", "events_per_s": 1.0 + len(ran)}

    monkeypatch.setattr(peers_run, "ensure_topics", nothing)
    monkeypatch.setattr(peers_run, "produce_records", nothing)
    monkeypatch.setattr(peers_run, "run_peer", contender)
    monkeypatch.setattr(peers_run, "run_cxpulse", contender)
    workload = SimpleNamespace(records=[], density=1000.0, answers=0, span_s=0.0, counts={})
    names = ["raw", "cxpulse", "bytewax"]
    got = peers_run.run_density(
        SimpleNamespace(bootstrap="-"),  # type: ignore[arg-type]
        workload,  # type: ignore[arg-type]
        names,
        {"raw": Path("python"), "bytewax": Path("python")},
        {},
        tmp_path,
        lateness_s=1.0,
        timeout_s=1.0,
        rounds=3,
    )
    want = [n for r in (1, 2, 3) for n in round_order(names, r)]
    assert ran == want
    assert [c["round"] for c in got["contenders"]] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [m["name"] for m in got["medians"]] == names  # the table keeps the given order


def test_the_bench_counterbalances_its_workloads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran: list[str] = []

    @contextlib.contextmanager
    def broker(**kwargs: Any) -> Iterator[SimpleNamespace]:
        yield SimpleNamespace(bootstrap="-")

    def bench_workload(broker: Any, workload: SimpleNamespace, *args: Any) -> dict[str, Any]:
        ran.append(workload.name)
        return {"events": 1, "ceiling": None, "runs": []}

    monkeypatch.setattr(bench_run, "EmbeddedBroker", broker)
    monkeypatch.setattr(bench_run, "build", lambda name, *a, **k: SimpleNamespace(name=name))
    monkeypatch.setattr(bench_run, "bench_workload", bench_workload)
    bench_run.main(10, str(tmp_path / "out.json"), workloads=("survey", "mixed"), rounds=4)
    assert ran == ["survey", "mixed", "mixed", "survey", "mixed", "survey", "survey", "mixed"]
