"""What a worker reports about itself on ``/healthz``, and the batches it has in flight."""

from __future__ import annotations

import asyncio

import faust

from cxpulse.agents.worker.runtime import now_ms


class Health:
    """Why the worker is or is not consuming, for ``/healthz``."""

    def __init__(self) -> None:
        self.broker_error: str | None = None
        self.broker_error_since_ms: int | None = None
        self.last_batch_ms: int | None = None
        #: wall clock when the last rebalance (and its table recovery) completed: the
        #: moment from which this worker exports the series of its new partitions
        self.rebalanced_at_ms: int | None = None
        #: per agent, what it is doing and since when (``/healthz``): a worker that
        #: stops making progress shows where (e.g. waiting for deliveries)
        self.agents: dict[str, tuple[str, int]] = {}

    def doing(self, agent: str, what: str) -> None:
        self.agents[agent] = (what, now_ms())

    def reason(self, app: faust.App) -> str | None:
        if not app.consumer.assignment() and self.last_batch_ms is None:
            return "starting: waiting for partitions"
        if app.rebalancing:
            return "rebalancing"
        if app.in_recovery:
            return "recovering tables"
        if self.broker_error is not None:
            return f"broker unreachable: {self.broker_error}"
        return None


class InFlight:
    """Batches an agent is processing, so a revocation can wait for them to finish.

    Faust's own wait (``stream_wait_empty``) is off in cxpulse. Without a wait, a
    batch still awaiting its deliveries when the partitions are revoked finishes
    *during* the table recovery that follows: recovery re-applies the changelog
    up to the high-water mark it measured, over the batch's store writes, while
    the batch itself is acked and committed, so its effect could vanish from the
    state restored after the rebalance (Faust's recovery does not wait for it).
    Waiting in the revocation callback puts every batch's writes and deliveries
    before the recovery.
    """

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def begin(self) -> None:
        """A batch was taken: from before its processing until its delivery ends."""
        self._count += 1
        self._idle.clear()

    def end(self) -> None:
        """A batch's delivery ended (confirmed, failed or cancelled)."""
        self._count -= 1
        if not self._count:
            self._idle.set()

    def __enter__(self) -> None:
        self.begin()

    def __exit__(self, *exc: object) -> None:
        self.end()

    @property
    def busy(self) -> bool:
        return self._count > 0

    async def idle(self) -> None:
        """Return once no batch is being processed."""
        await self._idle.wait()
