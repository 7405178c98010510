"""What a worker does when partitions are revoked from it and when a rebalance completes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.types import TP

from cxpulse.agents.kafka.store import LazyView
from cxpulse.agents.worker.context import Worker
from cxpulse.agents.worker.runtime import now_ms

log = logging.getLogger("cxpulse")


def add_rebalance_hooks(w: Worker) -> None:
    """Connect the revocation and rebalance-complete handlers to the app's signals."""
    app, runtime = w.app, w.runtime

    async def on_rebalanced(sender: Any, **kwargs: Any) -> None:
        w.health.rebalanced_at_ms = now_ms()
        # Tables are recovered: a taken-over merge partition's series are exported now,
        # not once its first partials batch arrives and the next tick emits (up to ~2 s).
        for tp in app.consumer.assignment():
            if tp.topic == w.names.partials:
                runtime.restore_merge(tp.partition, LazyView(w.merge_table, tp.partition))
        w.collector.batches_begin()

    async def on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        w.collector.batches_end()  # table recovery ahead: no batch boundaries to collect at
        # batches in flight finish first: their writes must precede the recovery (InFlight)
        if w.in_flight.busy:
            log.info("cxpulse: revoking; waiting for the batches in flight")
            await w.in_flight.idle()
        for tp in revoked:
            family = runtime.family_of_topic.get(tp.topic)
            if family is not None:
                runtime.drop_source(family, tp.partition)
            elif tp.topic == w.names.partials:
                runtime.drop_merge(tp.partition)

    def restore_sources() -> None:
        """Restore the assigned source partitions now, for their open gauges.

        Called as the rebalance ends (:meth:`CxApp.on_rebalance_end`): the tables are
        recovered for this very assignment (not for one a newer rebalance replaced)
        and no batch of it has been read yet (:meth:`Runtime.restore_sources`).
        """
        sources: dict[tuple[str, int], Mapping[str, bytes]] = {}
        for tp in app.consumer.assignment():
            family = runtime.family_of_topic.get(tp.topic)
            if family is not None:
                sources[(family, tp.partition)] = LazyView(w.tables[family], tp.partition)
        runtime.restore_sources(sources)

    app.cx_on_ready = restore_sources
    app.on_rebalance_complete.connect(on_rebalanced)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]
