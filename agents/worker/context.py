"""Everything a worker's agents, timer, rebalance hooks and pages share, built once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cxpulse.agents.publish.metrics import Metrics
from cxpulse.agents.worker.app import CxApp, Topics
from cxpulse.agents.worker.collector import CollectionPolicy
from cxpulse.agents.worker.delivery import Deliverer
from cxpulse.agents.worker.health import Health, InFlight
from cxpulse.agents.worker.runtime import Runtime
from cxpulse.streams.settings import Settings


@dataclass(frozen=True, slots=True)
class Worker:
    """One worker's parts: the app, its settings and topics, and the state between them."""

    app: CxApp
    settings: Settings
    names: Topics
    runtime: Runtime
    metrics: Metrics
    health: Health
    in_flight: InFlight
    collector: CollectionPolicy
    deliverer: Deliverer
    #: per family, the table of its source partitions' engine state
    tables: dict[str, Any]
    #: the merge stage's table (merged buckets, watermarks)
    merge_table: Any
