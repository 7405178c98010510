"""Bytes of state per open cart: the engine's in-memory entity and its table record.

Run: ``.venv/bin/python -m benchmarks.state_size [carts]``. Feeds N carts, each
with one open session, through a real :class:`PartitionProcessor` and measures
the Python heap it holds (tracemalloc) and the bytes of the table records it
writes (what the changelog and the table store hold per cart).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc

import orjson

from agents.cart.family import CartFamily
from streams.engine import EngineConfig, PartitionProcessor
from streams.transport import RawRecord
from streams.watermarks import TimePolicy

T0 = 1_795_046_400_000


def _cart(i: int) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "type": "item_added",
        "ts": T0 + i,
        "cart_id": f"cart-{i:08d}",
        "channel": "web",
        "customer_id": f"c{i}",
        "cart_value": 19.99,
    }


def measure(carts: int) -> dict[str, float]:
    policy = TimePolicy(120_000, 60_000, 300_000)
    config = EngineConfig(
        "cart", (60_000, 900_000, 3_600_000, 86_400_000), policy, 86_400_000, ("channel",), 20
    )
    proc = PartitionProcessor(CartFamily(30 * 60_000, 7 * 86_400_000), config, 0, 0)
    records = [RawRecord(i, None, orjson.dumps(_cart(i)), None) for i in range(carts)]
    closing = {"type": "heartbeat", "ts": T0 + carts + 200_000}
    heartbeat = RawRecord(carts, None, orjson.dumps(closing), None)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table_bytes = 0
    for i in range(0, carts, 5_000):
        out = proc.process(records[i : i + 5_000], 0, None)
        table_bytes += sum(len(k) + len(v or b"") for k, v in out.writes if k.split("|")[1] == "e")
    out = proc.process([heartbeat], 0, None)  # sessions open: every cart applied, none ended
    last = {k: v for k, v in out.writes if k.split("|")[1] == "e"}
    record = sum(len(k) + len(v or b"") for k, v in last.items()) / max(len(last), 1)
    del out, last
    records.clear()
    gc.collect()
    engine = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    open_now = proc.gauges[("cx_carts_open", "all")]
    assert open_now == carts, open_now
    return {
        "carts": carts,
        "engine_bytes_per_cart": engine / carts,
        "table_record_bytes_per_cart": record,
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(orjson.dumps(measure(n), option=orjson.OPT_INDENT_2).decode())
