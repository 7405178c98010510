"""``python -m benchmarks.peers``: cxpulse and its peers on the answer workload (see ``run``)."""

from __future__ import annotations

import argparse
import sys

from benchmarks.peers import report
from benchmarks.peers.run import DENSITIES, PEER_LATENESS_S, main
from benchmarks.peers.workload import EVENTS


def _floats(text: str) -> tuple[float, ...]:
    values = tuple(float(x) for x in text.split(","))
    if not values or not all(0 < v < float("inf") for v in values):
        raise ValueError(text)
    return values


def _names(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    if not names or any(n not in report.COMPUTES for n in names):
        raise ValueError(text)
    return names


def _rounds(text: str) -> int:
    rounds = int(text)
    if rounds < 1:
        raise ValueError(text)
    return rounds


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__)
    p.add_argument("--events", type=int, default=EVENTS, help="nps answers per density")
    p.add_argument(
        "--densities",
        type=_floats,
        default=DENSITIES,
        help="answers per second of event time, comma-separated (default: 3.5,28,1000)",
    )
    p.add_argument(
        "--contenders",
        type=_names,
        default=report.CONTENDERS,
        help=f"comma-separated, in the first round's running order, later rounds"
        f" counterbalanced (default: {','.join(report.CONTENDERS)})",
    )
    p.add_argument(
        "--lateness-s", type=float, default=PEER_LATENESS_S, help="the peers' window grace"
    )
    p.add_argument(
        "--repeat",
        type=_rounds,
        default=1,
        help="rounds per density, every contender once a round; the table adds the medians",
    )
    p.add_argument("--out", default="benchmarks/results-peers.json")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse()
    sys.exit(
        main(a.events, a.densities, a.contenders, a.out, lateness_s=a.lateness_s, rounds=a.repeat)
    )
