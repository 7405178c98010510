"""Bytes of state per open cart and per open ticket: in-memory entity and table record.

Run: ``.venv/bin/python -m benchmarks.state_size [n]``. Feeds N carts, each with
one open session, and N tickets, each created and waiting for a reply, through a
real :class:`PartitionProcessor` and measures the Python heap it holds
(tracemalloc), the bytes of the table records it writes (what the changelog
and the table store hold per entity), and what a full collection of the cyclic
collector takes with them held, against the same process before (a worker runs
one from its timer, :mod:`cxpulse.agents.worker.collector`).
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc

import orjson

from cxpulse.schemas.input import RawRecord
from cxpulse.streams.engine import EngineConfig, PartitionProcessor
from cxpulse.streams.families.cart.family import CartFamily
from cxpulse.streams.families.ticket.family import TicketFamily
from cxpulse.streams.family import Family
from cxpulse.streams.watermarks import TimePolicy

T0 = 1_795_046_400_000
#: the wall clock the processor sees: after every event (future events are invalid)
WALL = T0 + 86_400_000


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


def _ticket(i: int) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "type": "created",
        "ts": T0 + i,
        "ticket_id": f"ticket-{i:08d}",
        "channel": "email",
        "priority": "low",
        "tags": [],
    }


def full_collection_ms() -> float:
    """The fastest of three full collections, after three that untrack what they can
    (a collection untracks one level of nested tuples)."""
    for _ in range(3):
        gc.collect()
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        gc.collect()
        best = min(best, time.perf_counter() - began)
    return best * 1000


def measure(carts: int, kind: str = "cart") -> dict[str, float]:
    """Open entities of ``kind`` (``cart`` or ``ticket``): heap and table bytes each, and
    a full collection's milliseconds with and without them."""
    policy = TimePolicy(120_000, 60_000, 300_000)
    config = EngineConfig(
        kind, (60_000, 900_000, 3_600_000, 86_400_000), policy, 86_400_000, ("channel",), 20
    )
    family: Family
    if kind == "cart":
        family, make = CartFamily(30 * 60_000, 7 * 86_400_000), _cart
    else:
        sla = {"urgent": 3_600_000, "high": 4 * 3_600_000, "normal": 8 * 3_600_000}
        family, make = TicketFamily({**sla, "low": 86_400_000}, None, 86_400_000), _ticket
    without = full_collection_ms()
    proc = PartitionProcessor(family, config, 0, WALL)
    records = [RawRecord(i, None, orjson.dumps(make(i)), None) for i in range(carts)]
    closing = {"type": "heartbeat", "ts": T0 + carts + 200_000}
    heartbeat = RawRecord(carts, None, orjson.dumps(closing), None)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table_bytes = 0
    for i in range(0, carts, 5_000):
        out = proc.process(records[i : i + 5_000], WALL, None)
        table_bytes += sum(len(k) + len(v or b"") for k, v in out.writes if k.split("|")[1] == "c")
    out = proc.process([heartbeat], WALL, None)  # sessions open: every cart applied, none ended
    # entity chunks (cxpulse.streams.entitylog): the bytes of the batch's chunk per entity in it
    last = {k: v for k, v in out.writes if k.split("|")[1] == "c" and v is not None}
    entries = sum(len(orjson.loads(v)["e"]) for v in last.values())
    record = sum(len(k) + len(v) for k, v in last.items()) / max(entries, 1)
    del out, last
    records.clear()
    gc.collect()
    engine = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    open_now = proc.gauges[(f"cx_{kind}s_open", "all")]
    assert open_now == carts, open_now
    held = full_collection_ms()
    return {
        f"{kind}s": carts,
        f"engine_bytes_per_{kind}": engine / carts,
        f"table_record_bytes_per_{kind}": record,
        f"full_collection_ms_with_{kind}s": held,
        f"full_collection_ms_without_{kind}s": without,
    }


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = {**measure(n, "cart"), **measure(n, "ticket")}
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
