"""A revocation waits for the batches in flight before the worker drops its state.

Why it matters (``cxpulse.agents.worker.pipeline.InFlight``): a batch finishing during the
table recovery after a rebalance could have its store writes overwritten by the
recovery while the batch itself is committed, a silent loss. The agents, Faust app and
signal here are the real ones; only no broker is needed, because the revocation
callback does not talk to it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from faust.types import TP

from cxpulse.agents.worker.app import create_app
from cxpulse.agents.worker.pipeline import register
from cxpulse.streams.settings import load_settings


def _app(tmp_path: Path) -> tuple[Any, Any]:
    settings = load_settings(env={"CXPULSE_STORE_DATA_DIR": str(tmp_path)})
    app: Any = create_app(settings, "kafka://127.0.0.1:9", embedded=True)
    runtime = register(app, settings)
    return app, runtime


async def test_revocation_waits_for_the_batch_in_flight(tmp_path: Path) -> None:
    app, runtime = _app(tmp_path)
    runtime.processor("survey", 0, {})
    runtime.merge_state(0, {})
    revoked = {TP(runtime.topic_of["survey"], 0), TP(f"{app.conf.id}.partials", 0)}
    with app.cx_in_flight:
        revocation = asyncio.create_task(app.on_partitions_revoked.send(revoked))
        await asyncio.sleep(0.1)
        assert not revocation.done(), "the revocation did not wait for the batch"
        assert ("survey", 0) in runtime.processors and 0 in runtime.merges
    await asyncio.wait_for(revocation, timeout=1.0)
    assert ("survey", 0) not in runtime.processors and 0 not in runtime.merges


async def test_revocation_without_a_batch_in_flight_drops_at_once(tmp_path: Path) -> None:
    app, runtime = _app(tmp_path)
    runtime.processor("cart", 1, {})
    await asyncio.wait_for(
        app.on_partitions_revoked.send({TP(runtime.topic_of["cart"], 1)}), timeout=1.0
    )
    assert ("cart", 1) not in runtime.processors
