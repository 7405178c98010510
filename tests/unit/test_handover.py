"""An agent's deliveries run one at a time, in processing order, while it goes on.

:class:`~cxpulse.agents.worker.delivery.Handover` is what lets an agent process its
next batch while the broker acknowledges the previous one. What the exactly-once
argument needs from it: deliveries never overlap and never reorder (a changelog
partition holds complete batches plus at most one more), each counts in flight
until it ends (a revocation waits for it), and a failure stops the worker at once.
"""

from __future__ import annotations

import asyncio

import pytest

from cxpulse.agents.worker.delivery import DeliveryFailed, Handover
from cxpulse.agents.worker.health import InFlight


class Broker:
    """Deliveries that wait until the test acknowledges them, and a log of what ran."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.acks: dict[int, asyncio.Event] = {}

    async def deliver(self, n: int, fail: bool = False) -> None:
        self.log.append(f"start {n}")
        await self.acks.setdefault(n, asyncio.Event()).wait()
        if fail:
            raise RuntimeError(f"broker refused {n}")
        self.log.append(f"done {n}")

    def ack(self, n: int) -> None:
        self.acks.setdefault(n, asyncio.Event()).set()


async def _no_error(exc: BaseException) -> None:
    raise AssertionError(f"unexpected failure: {exc!r}")


async def test_the_next_batch_is_processed_while_the_previous_one_is_delivered() -> None:
    broker, in_flight = Broker(), InFlight()
    handover = Handover(in_flight, _no_error)
    await handover.put(broker.deliver(1))
    await asyncio.sleep(0)
    # the agent is free: batch 2 is processed now, its delivery waits for batch 1's
    assert broker.log == ["start 1"] and in_flight.busy
    put2 = asyncio.create_task(handover.put(broker.deliver(2)))
    await asyncio.sleep(0.01)
    assert broker.log == ["start 1"] and not put2.done()
    broker.ack(1)
    await put2
    await asyncio.sleep(0)
    assert broker.log == ["start 1", "done 1", "start 2"] and in_flight.busy
    broker.ack(2)
    await handover.drain()
    assert broker.log == ["start 1", "done 1", "start 2", "done 2"]
    assert not in_flight.busy


async def test_deliveries_keep_the_processing_order() -> None:
    broker, in_flight = Broker(), InFlight()
    handover = Handover(in_flight, _no_error)
    for n in range(5):
        broker.ack(n)  # acknowledged at once: only the order is left to check
        await handover.put(broker.deliver(n))
    await handover.drain()
    assert broker.log == [f"{what} {n}" for n in range(5) for what in ("start", "done")]
    assert not in_flight.busy


async def test_a_failed_delivery_is_reported_at_once_and_stops_the_next() -> None:
    broker, in_flight = Broker(), InFlight()
    reported: list[BaseException] = []

    async def on_error(exc: BaseException) -> None:
        reported.append(exc)

    handover = Handover(in_flight, on_error)
    await handover.put(broker.deliver(1, fail=True))
    broker.ack(1)
    await asyncio.sleep(0.01)
    # reported without waiting for a next batch (the stream may be idle)
    assert [str(e) for e in reported] == ["broker refused 1"]
    assert not in_flight.busy
    with pytest.raises(DeliveryFailed):
        await handover.put(broker.deliver(2))
    assert "start 2" not in broker.log


async def test_a_cancelled_agent_cancels_its_delivery_in_flight() -> None:
    broker, in_flight = Broker(), InFlight()
    handover = Handover(in_flight, _no_error)
    await handover.put(broker.deliver(1))
    await asyncio.sleep(0)
    handover.cancel()
    await asyncio.sleep(0.01)
    assert broker.log == ["start 1"] and not in_flight.busy
    await handover.drain()  # nothing left to wait for
    # cancelled before its first step: closed, not left unawaited
    await handover.put(broker.deliver(2))
    handover.cancel()
    await asyncio.sleep(0.01)
    assert broker.log == ["start 1"] and not in_flight.busy
