"""A cxpulse worker on a Faust app: topics, tables, agents, timer, rebalance hooks, pages.

Two stages, both fed whole batches by :mod:`cxpulse.agents.kafka.transport`:

* one *source* agent per metric family reads its input topic and keeps the
  per-partition engine state in that family's table (changelog co-partitioned
  with the topic), sending dead letters and bucket snapshots;
* the *merge* agent reads the internal partials topic, keeps merged buckets and
  watermarks in the merge table, and publishes final KPI records.

Every batch is delivered to the broker (changelog records, dead letters,
snapshots) and only then declared processed (:mod:`cxpulse.agents.worker.delivery`),
the one condition under which the consumer lets Faust ack and commit it, so a
committed offset never runs ahead of durable state. :func:`register` builds the
shared :class:`~cxpulse.agents.worker.context.Worker` and hands it to each piece.
"""

from __future__ import annotations

from typing import Any

from cxpulse.agents.publish.metrics import Metrics
from cxpulse.agents.worker.agents import add_merge_agent, add_source_agent
from cxpulse.agents.worker.app import CxApp, topic_names
from cxpulse.agents.worker.collector import CollectionPolicy
from cxpulse.agents.worker.context import Worker
from cxpulse.agents.worker.delivery import Deliverer
from cxpulse.agents.worker.health import Health, InFlight
from cxpulse.agents.worker.rebalance import add_rebalance_hooks
from cxpulse.agents.worker.runtime import Runtime
from cxpulse.agents.worker.timer import add_timer
from cxpulse.agents.worker.web import add_pages
from cxpulse.streams.settings import Settings


def build_worker(app: CxApp, settings: Settings) -> Worker:
    """The worker's shared parts, its topics and tables declared on ``app``."""
    names = topic_names(settings)
    n = settings.topics.partitions
    runtime = Runtime(settings, names.partials)
    health = Health()
    collector = CollectionPolicy()
    tables = {
        family: app.Table(f"{family}-state", partitions=n, key_type=str, value_type=bytes)
        for family in names.sources
    }
    merge_table = app.Table("merge-state", partitions=n, key_type=str, value_type=bytes)
    return Worker(
        app=app,
        settings=settings,
        names=names,
        runtime=runtime,
        metrics=Metrics(runtime, names.sources.values()),
        health=health,
        in_flight=InFlight(),
        collector=collector,
        deliverer=Deliverer(app, health, collector),
        tables=tables,
        merge_table=merge_table,
    )


def register(app: CxApp, settings: Settings) -> Runtime:
    """Declare the topics, tables, agents, timer, rebalance hooks and pages of a worker."""
    w = build_worker(app, settings)
    app_any: Any = app
    app_any.cx_worker = w
    app_any.cx_runtime, app_any.cx_metrics, app_any.cx_health = w.runtime, w.metrics, w.health
    app_any.cx_in_flight, app_any.cx_collector = w.in_flight, w.collector
    partials = app.topic(
        w.names.partials,
        partitions=settings.topics.partitions,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,
    )
    for family, topic_name in w.names.sources.items():
        add_source_agent(w, family, topic_name)
    add_merge_agent(w, partials)
    add_timer(w)
    add_rebalance_hooks(w)
    add_pages(w)
    return w.runtime
