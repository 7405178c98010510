"""The worker's HTTP pages (SPEC §4.4): ``/metrics``, ``/kpis``, ``/healthz``."""

from __future__ import annotations

from urllib.parse import parse_qs

from faust.web import Request, Response, View
from prometheus_client import generate_latest

from cxpulse.agents.worker.context import Worker


def add_pages(w: Worker) -> None:
    """``/metrics``, ``/kpis`` and ``/healthz`` on the worker's web port (SPEC §4.4)."""
    app, runtime, metrics, health, collector = w.app, w.runtime, w.metrics, w.health, w.collector

    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> Response:
        # ?name[]=cx_events_total&name[]=...: only those series, as client_python's own
        # exposition does; a scrape of a few counters then costs the worker little
        names = parse_qs(request.query_string).get("name[]")
        registry = metrics.registry.restricted_registry(names) if names else metrics.registry
        return web.text(generate_latest(registry).decode(), content_type="text/plain")

    @app.page("/kpis")
    async def kpis_page(web: View, request: Request) -> Response:
        records = sorted(
            runtime.latest_records(), key=lambda r: (r["metric"], r["window"], r["segment"])
        )
        return web.json({"records": records, "finals": runtime.latest_finals()})

    @app.page("/healthz")
    async def healthz_page(web: View, request: Request) -> Response:
        reason = health.reason(app)
        agents = {name: {"doing": what, "since": at} for name, (what, at) in health.agents.items()}
        if reason is None:
            body = {
                "status": "ok",
                "rebalanced_at": health.rebalanced_at_ms,
                "agents": agents,
                "merge": runtime.merge_watermarks(),
                "gc": {
                    "batch_driven": collector.driving,
                    "young": collector.young_runs,
                    "full": collector.full_runs,
                },
            }
            return web.json(body)
        return web.json({"status": "unavailable", "reason": reason, "agents": agents}, status=503)
