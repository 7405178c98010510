"""``cxpulse demo``: the embedded broker, a worker, live traffic, Prometheus and the live view.

Time is compressed so the story fits in minutes: short windows and alert rules,
carts abandoned after 90 s, ticket lives at 1/666 of real time. The traffic's
daily rhythm is anchored at the start, so the story is the same at any hour.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from cxpulse.streams.settings import Settings, settings_or_exit

#: The demo compresses time: cart journeys run at 1/5 of real time, ticket lives at
#: 1/666 (a usual three-hour first response takes 16 s, a day's queue fits in minutes).
DEMO_CART_PACE = 0.2
DEMO_TICKET_PACE = 0.0015

#: The demo's traffic: an hour of history first, then live; the incident after 2 minutes.
DEMO_TRAFFIC = (
    *("--rate", "20", "--backfill", "3600", "--incident-after", "120"),
    *("--ticket-pace", str(DEMO_TICKET_PACE), "--cart-pace", str(DEMO_CART_PACE)),
)


def _demo_rules() -> list[dict[str, object]]:
    """The demo's alert rules: the last 5 minutes against the last hour.

    The SPEC defaults compare 1h or 15m with 7d or 24h, which a fresh demo cannot
    fill. The first-response rule needs ``min_n`` 100: a p90 over fewer replies is
    noise, and the demo answers about 145 tickets in 5 minutes, in calm times and
    during the incident alike (agents keep their pace, the queue grows).
    """

    def rule(name: str, metric: str, direction: str, threshold: object, **kw: object) -> dict:
        return {
            "name": name,
            "metric": metric,
            "window": "5m/1m",
            "baseline": "1h/1m",
            "direction": direction,
            "threshold": threshold,
            **kw,
        }

    return [
        rule("nps_drop", "nps", "drop", 10, min_n=30, z=1.96),
        rule("csat_drop", "csat", "drop", 0.10, min_n=30, z=1.96),
        rule("cart_abandonment_rise", "cart_abandonment", "rise", 0.10, min_n=50, z=1.96),
        rule(
            "first_response_slowdown",
            "ticket_first_response_seconds",
            "rise",
            "50%",
            min_n=100,
            z=0.0,
            stat="p90",
        ),
    ]


def _demo_sla_targets() -> dict[str, str]:
    """The SPEC's default SLA targets at the demo's ticket pace, as environment settings."""
    from cxpulse.streams.durations import format_duration_ms
    from cxpulse.streams.settings import PRIORITIES, TicketSettings

    defaults = TicketSettings().sla_ms
    return {
        f"CXPULSE_TICKETS_SLA_{p.upper()}": format_duration_ms(
            round(defaults[p] * DEMO_TICKET_PACE)
        )
        for p in PRIORITIES
    }


def demo_env(broker_url: str, port: int) -> dict[str, str]:
    """The demo worker's settings: short windows and alert rules, so a story fits in minutes.

    Carts count as abandoned after 90 idle seconds and ticket SLA targets are the
    defaults, both at the pace of the demo's compressed journeys; the live traffic
    is in order, so 10 s of lateness. The web server binds the loopback only, and
    topics have one replica (the embedded broker is one node).
    """
    return {
        "CXPULSE_BROKER_URL": broker_url,
        "CXPULSE_TOPICS_REPLICATION_FACTOR": "1",
        "CXPULSE_WEB_HOST": "127.0.0.1",
        "CXPULSE_WEB_PORT": str(port),
        "CXPULSE_EMIT_INTERVAL": "2s",
        "CXPULSE_WINDOWS_LIST": '["5m/1m", "15m/1m", "1h/1m", "24h/15m"]',
        "CXPULSE_ALERTS_RULES": json.dumps(_demo_rules()),
        "CXPULSE_TIME_IDLE_TIMEOUT": "10s",
        "CXPULSE_TIME_ALLOWED_LATENESS": "10s",
        # 30 min at the cart pace would be 6 min; 90 s keeps the story short
        "CXPULSE_CARTS_ABANDON_AFTER": "90s",
        **_demo_sla_targets(),
    }


def run_demo(config: str | None, settings: Settings, duration: float | None) -> int:
    """Broker, a worker, live traffic and (when installed) Prometheus as child
    processes, and the live view here; everything stops with it."""
    from cxpulse.agents.tools.broker import EmbeddedBroker, free_port

    exe = [sys.executable, "-m", "cxpulse.agents.cli"]
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    with EmbeddedBroker() as broker:
        port = settings.web_port or free_port()
        env = {**os.environ, **demo_env(broker.url, port)}
        children = [
            subprocess.Popen([*exe, "worker", "--embedded-tuning"], env=env),
            subprocess.Popen([*exe, "generate", *DEMO_TRAFFIC], env=env),
        ]
        print(f"cxpulse demo: worker metrics at http://127.0.0.1:{port}/metrics", file=sys.stderr)
        try:
            with _demo_prometheus(port):
                demo_settings = settings_or_exit(config, env)
                asyncio.run(_demo_view(broker.url, demo_settings, duration))
        except KeyboardInterrupt:
            pass
        finally:
            _stop_children(children)
    return 0


@contextlib.contextmanager
def _demo_prometheus(worker_port: int) -> Iterator[None]:
    """Prometheus pointed at the demo's worker when the binary is installed; one line
    says where it is, or why there is none."""
    from cxpulse.agents.tools.demo_prometheus import demo_prometheus, prometheus_binary

    binary = prometheus_binary()
    with demo_prometheus(worker_port, binary) as url:
        if url is not None:
            note = f"Prometheus at {url} (scrapes the worker, the project's rules)"
        elif binary is None:
            note = "no `prometheus` installed, so no Prometheus server (apt install prometheus)"
        else:
            note = f"{binary} did not start; going on without Prometheus"
        print(f"cxpulse demo: {note}", file=sys.stderr)
        yield


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM all first (they stop in parallel), then wait; kill what hangs."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _demo_view(url: str, settings: Settings, duration: float | None) -> None:
    from cxpulse.agents.tools.view import watch_kpis

    await watch_kpis(url.removeprefix("kafka://"), settings, duration_s=duration)
