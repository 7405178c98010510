"""The ``cxpulse`` command: worker, broker, replay, generate, kpis, demo, bench.

Settings are built once here (TOML + env) and handed down; a bad value exits 2
naming the key before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cxpulse.streams.settings import Settings, settings_or_exit


def _bootstrap(url: str) -> str:
    return url.removeprefix("kafka://")


@contextlib.contextmanager
def broker_for(settings: Settings, override: str | None) -> Iterator[tuple[str, bool]]:
    """The broker URL to use, starting the embedded one when none is configured."""
    url = override or settings.broker.url
    if url:
        yield url, False
        return
    from cxpulse.agents.tools.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        print(f"cxpulse: embedded broker at {broker.url}", file=sys.stderr)
        yield broker.url, True


def all_topics(settings: Settings) -> dict[str, int]:
    from cxpulse.agents.worker.app import topic_names

    names = topic_names(settings)
    n = settings.topics.partitions
    topics = {name: n for name in settings.topics.inputs}
    topics.update(
        {names.partials: n, names.ticks: n, names.kpi: n, names.alerts: n, names.deadletter: n}
    )
    return topics


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.broker import ensure_topics, wait_for_kafka
    from cxpulse.agents.worker.app import QuietWorker, create_app
    from cxpulse.agents.worker.collector import CollectionPolicy
    from cxpulse.agents.worker.pipeline import register

    with broker_for(settings, args.broker) as (url, embedded):
        embedded = embedded or bool(args.embedded_tuning)
        bootstrap = _bootstrap(url)
        asyncio.run(wait_for_kafka(bootstrap))
        asyncio.run(ensure_topics(bootstrap, all_topics(settings)))
        app = create_app(settings, url, embedded=embedded)
        register(app, settings)
        CollectionPolicy.freeze_startup()
        worker = QuietWorker(app, loglevel=settings.worker.log_level.upper(), quiet=True)
        worker.execute_from_commandline()
    return 0


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.broker import run_broker_forever

    return run_broker_forever(args.port)


def _broker_url(args: argparse.Namespace, settings: Settings, command: str) -> str | None:
    """``--broker``, else ``[broker] url``; ``None`` (after saying so) when neither is set."""
    url: str | None = args.broker or settings.broker.url
    if not url:
        print(
            f"cxpulse {command}: give --broker kafka://host:port (or [broker] url)", file=sys.stderr
        )
    return url or None


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.broker import ensure_topics
    from cxpulse.agents.tools.replay import replay_file

    url = _broker_url(args, settings, "replay")
    if url is None:
        return 2
    bootstrap = _bootstrap(url)
    asyncio.run(ensure_topics(bootstrap, all_topics(settings)))
    n = asyncio.run(replay_file(Path(args.file), bootstrap, settings, close=not args.no_close))
    print(f"cxpulse replay: produced {n} records", file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.broker import ensure_topics
    from cxpulse.agents.tools.replay import generate

    url = _broker_url(args, settings, "generate")
    if url is None:
        return 2
    bootstrap = _bootstrap(url)
    asyncio.run(ensure_topics(bootstrap, all_topics(settings)))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            generate(
                bootstrap,
                settings,
                rate=args.rate,
                duration_s=args.duration,
                incident_after_s=args.incident_after,
                backfill_s=args.backfill,
                ticket_pace=args.ticket_pace,
                cart_pace=args.cart_pace,
            )
        )
    return 0


def cmd_kpis(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.view import watch_kpis

    url = _broker_url(args, settings, "kpis")
    if url is None:
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch_kpis(_bootstrap(url), settings, duration_s=args.duration))
    return 0


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
    is in order, so 10 s of lateness.
    """
    return {
        "CXPULSE_BROKER_URL": broker_url,
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
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
                demo_settings = settings_or_exit(args.config, env)
                asyncio.run(_demo_view(broker.url, demo_settings, args.duration))
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

    await watch_kpis(_bootstrap(url), settings, duration_s=duration)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from benchmarks.run import main as bench_main

    return bench_main(
        args.events,
        args.out,
        paced_events=args.paced_events,
        workloads=args.workload or ("survey", "mixed"),
        worker_counts=args.workers,
        event_time_rate=args.event_time_rate,
    )


def _worker_counts(text: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``; argparse turns the ValueError into a usage error."""
    counts = tuple(int(part) for part in text.split(","))
    if not counts or min(counts) < 1:
        raise ValueError(text)
    return counts


def _positive_rate(text: str) -> float:
    """A finite rate above 0; argparse turns the ValueError into a usage error."""
    rate = float(text)
    if not 0 < rate < float("inf"):
        raise ValueError(text)
    return rate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxpulse", description=__doc__)
    parser.add_argument("--config", help="TOML config file (default: $CXPULSE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("worker", help="run a worker (joins the consumer group)")
    p.add_argument("--broker", help="kafka://host:port (default: [broker] url, else embedded)")
    p.add_argument(
        "--embedded-tuning",
        action="store_true",
        help="short session timeouts for the embedded broker",
    )
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("broker", help="run the embedded Kafka-compatible broker alone")
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("replay", help="produce a recorded JSONL file, then closing heartbeats")
    p.add_argument("file")
    p.add_argument("--broker")
    p.add_argument("--no-close", action="store_true", help="do not send closing heartbeats")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("generate", help="live synthetic traffic")
    p.add_argument("--broker")
    p.add_argument("--rate", type=float, default=50.0, help="survey invitations per second")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: forever)")
    p.add_argument(
        "--incident-after",
        type=float,
        default=None,
        help="seconds until the app channel's scores collapse",
    )
    p.add_argument(
        "--backfill", type=float, default=0.0, help="seconds of history to produce first"
    )
    p.add_argument("--ticket-pace", type=float, default=1.0, help="scale of every ticket duration")
    p.add_argument("--cart-pace", type=float, default=1.0, help="scale of every cart duration")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("kpis", help="live terminal view of cx.kpi")
    p.add_argument("--broker")
    p.add_argument("--duration", type=float, default=None)
    p.set_defaults(func=cmd_kpis)

    p = sub.add_parser("demo", help="broker + worker + traffic + live view")
    p.add_argument("--duration", type=float, default=None)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "bench", help="throughput, latency and verification against the raw aiokafka ceiling"
    )
    p.add_argument(
        "--events", type=int, default=500_000, help="backlog events per workload (throughput)"
    )
    p.add_argument(
        "--event-time-rate",
        type=_positive_rate,
        default=1_000.0,
        help="events per second of event time in the generated workloads (default: 1000;"
        " the generators' historical pace is 3.5 for survey, 4.6 for mixed)",
    )
    p.add_argument(
        "--paced-events",
        type=int,
        default=None,
        help="events of the latency phase per workload (default: half of --events)",
    )
    p.add_argument(
        "--workload",
        action="append",
        choices=("survey", "mixed"),
        help="only this workload (repeatable; default: both)",
    )
    p.add_argument(
        "--workers",
        type=_worker_counts,
        default=(1, 2),
        help="worker process counts to run, comma-separated (default: 1,2)",
    )
    p.add_argument("--out", default="benchmarks/results.json", help="the JSON result file")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_or_exit(args.config)
    logging.basicConfig(
        level=settings.worker.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    started = time.monotonic()
    code: int = args.func(args, settings)
    logging.getLogger("cxpulse").debug("%s took %.1fs", args.command, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
