"""Engine-only throughput of the customer family: decode, dedup, per-customer order, buckets.

``python -m benchmarks.customer_engine [EVENTS]``: one partition processor fed
batches of 5,000 synthetic customer records (``CustomerTraffic``), no broker, no
merge stage. Prints events/s of ``PartitionProcessor.process``.
"""

from __future__ import annotations

import sys
import time

import orjson

from cxpulse.agents.tools.traffic import CustomerTraffic
from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.customer.family import CustomerFamily
from cxpulse.streams.settings import DEFAULT_WINDOWS
from cxpulse.streams.watermarks import TimePolicy

START_MS = 1_790_000_000_000
BATCH = 5_000


def main(events: int = 200_000) -> float:
    traffic = CustomerTraffic(seed=5, pace=0.05)
    out: list[dict[str, object]] = []
    i = 0
    while len(out) < events:
        out.extend(traffic.journey(START_MS + i * 2_000))
        if i % 50 == 0:
            out.extend(traffic.spend(START_MS + i * 2_000))
        i += 1
    out.sort(key=lambda e: int(e["ts"]))  # type: ignore[call-overload]
    raw = [RawRecord(n, None, orjson.dumps(e), None) for n, e in enumerate(out[:events])]
    policy = TimePolicy(120_000, 60_000, 300_000)
    grids = tuple(sorted({w.step_ms for w in DEFAULT_WINDOWS}))
    config = EngineConfig("customer", grids, policy, 86_400_000, ("channel",), 20)
    now = int(out[-1]["ts"]) + 1_000_000  # type: ignore[call-overload]
    proc = PartitionProcessor(CustomerFamily(), config, 0, now)
    began = time.perf_counter()
    for k in range(0, len(raw), BATCH):
        proc.process(raw[k : k + BATCH], now, None)
    rate = len(raw) / (time.perf_counter() - began)
    print(f"customer engine: {len(raw):,} events in batches of {BATCH:,}: {rate:,.0f} events/s")
    return rate


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
