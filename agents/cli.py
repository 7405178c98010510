"""The ``cxpulse`` command: worker, broker, replay, generate, kpis, demo, bench.

Settings are built once here (TOML + env) and handed down; a bad value exits 2
naming the key before anything starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
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
    from cxpulse.agents.tools.broker import EmbeddedBroker, EmbeddedBrokerMissing, broker_binary

    try:
        broker_binary()
    except EmbeddedBrokerMissing as exc:
        print(f"cxpulse: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with EmbeddedBroker() as broker:
        print(f"cxpulse: embedded broker at {broker.url}", file=sys.stderr)
        yield broker.url, True


def all_topics(settings: Settings) -> dict[str, int]:
    from cxpulse.agents.worker.app import topic_names

    names = topic_names(settings)
    n = settings.topics.partitions
    topics = {
        name: n for name in (settings.topics.survey, settings.topics.cart, settings.topics.ticket)
    }
    topics.update(
        {names.partials: n, names.ticks: n, names.kpi: n, names.alerts: n, names.deadletter: n}
    )
    return topics


#: Exit code when an installed Kafka library lacks a private part cxpulse needs.
EXIT_INCOMPATIBLE = 3


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.kafka import compat
    from cxpulse.agents.tools.broker import ensure_topics, wait_for_kafka
    from cxpulse.agents.worker.app import QuietWorker, create_app
    from cxpulse.agents.worker.collector import CollectionPolicy
    from cxpulse.agents.worker.pipeline import register

    try:
        compat.check()
    except compat.IncompatibleDependency as exc:
        print(f"cxpulse: {exc}", file=sys.stderr)
        return EXIT_INCOMPATIBLE
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


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.demo import run_demo

    return run_demo(args.config, settings, args.duration)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.peers:
        from benchmarks.peers.run import main as peers_main

        return peers_main(
            args.events or 200_000,
            (args.event_time_rate,),
            args.contenders,
            args.out or "benchmarks/results-peers.json",
        )
    from benchmarks.run import main as bench_main

    return bench_main(
        args.events or 500_000,
        args.out or "benchmarks/results.json",
        paced_events=args.paced_events,
        workloads=args.workload or ("survey", "mixed"),
        worker_counts=args.workers,
        event_time_rate=args.event_time_rate,
        paced_share=args.paced_share,
    )


def _worker_counts(text: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``; argparse turns the ValueError into a usage error."""
    counts = tuple(int(part) for part in text.split(","))
    if not counts or min(counts) < 1:
        raise ValueError(text)
    return counts


def _contenders(text: str) -> tuple[str, ...]:
    """``"raw,cxpulse"`` -> ``("raw", "cxpulse")``; unknown names are a usage error."""
    known = {"raw", "cxpulse", "cxpulse-default", "bytewax", "quix", "faust"}
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names or not set(names) <= known:
        raise ValueError(text)
    return names


def _positive_rate(text: str) -> float:
    """A finite rate above 0; argparse turns the ValueError into a usage error."""
    rate = float(text)
    if not 0 < rate < float("inf"):
        raise ValueError(text)
    return rate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxpulse",
        description=(
            "Real-time customer-experience KPIs from Kafka event streams. Settings come from "
            "one TOML file (--config or $CXPULSE_CONFIG) and CXPULSE_<SECTION>_<KEY> "
            "variables; a bad value exits 2 naming the key."
        ),
        epilog="Start with `make demo`; docs/ in the repository says the rest.",
    )
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
        "--events",
        type=int,
        default=None,
        help="backlog events per workload (throughput; default 500000, 200000 with --peers)",
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="cxpulse side by side with Bytewax, Quix Streams, Faust and a raw loop on the"
        " answer workload at --event-time-rate (each peer in its own venv; benchmarks/peers)",
    )
    p.add_argument(
        "--contenders",
        type=_contenders,
        default=("raw", "cxpulse", "cxpulse-default", "bytewax", "quix", "faust"),
        help="with --peers: which, comma-separated, in running order",
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
        "--paced-share",
        type=_positive_rate,
        default=0.5,
        help="the latency phase's rate as a share of the drain rate (default: 0.5)",
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
    p.add_argument(
        "--out",
        default=None,
        help="the JSON result file (default benchmarks/results.json,"
        " benchmarks/results-peers.json with --peers)",
    )
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
