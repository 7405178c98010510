"""The ``cxpulse`` command: worker, broker, topics, config, replay, generate, kpis, demo, bench.

Settings are built once here (TOML + env) and handed down; a bad value exits 2
naming the key before anything starts. A broker that cannot be used ends the
command with one line and the exit code of :mod:`cxpulse.agents.kafka.security`
(docs/operations.md lists them all).
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
from typing import Any

from cxpulse.agents.kafka.admin import EXIT_TOPICS_DIFFER, TopicReport, apply_topics, topic_plan
from cxpulse.agents.kafka.security import BrokerError, wait_for_kafka
from cxpulse.agents.logs import configure_logging, say
from cxpulse.streams.settings import Settings, settings_or_exit

log = logging.getLogger("cxpulse")


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
        say(f"embedded broker at {broker.url}", level=logging.WARNING)
        yield broker.url, True


def _connect(settings: Settings, bootstrap: str) -> None:
    """Wait for the broker with the configured security; :class:`BrokerError` if unusable."""
    asyncio.run(wait_for_kafka(bootstrap, broker=settings.broker))


def _tool_topics(settings: Settings, bootstrap: str, embedded: bool = False) -> None:
    """The topics a tool writes or reads, created with the plan when missing."""
    from cxpulse.agents.worker.app import internal_topics

    plan = topic_plan(settings, embedded=embedded, internal=internal_topics(settings))
    _report_differences(asyncio.run(apply_topics(bootstrap, plan, broker=settings.broker)))


def _report_differences(report: TopicReport) -> None:
    for line in report.differences:
        log.warning("topic differs from its plan (see `cxpulse topics`): %s", line)


def _with_web_port(settings: Settings) -> Settings:
    """``[web] port = 0``: a free port on the bind address now, and said where."""
    import dataclasses

    from cxpulse.agents.tools.broker import free_port

    if settings.web_port != 0:
        return settings
    port = free_port(settings.web_host)
    say(f"web server on {settings.web_host}:{port} ([web] port = 0)", level=logging.WARNING)
    return dataclasses.replace(settings, web_port=port)


class PortInUse(Exception):
    """The web server's address is taken (exit 2: ``[web] port`` must change)."""


def _check_port_free(host: str, port: int) -> None:
    """Fail before Faust starts when something already listens on ``host:port``."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"cannot listen on {host}:{port}: {exc.strerror}"
                " — check [web] port (0 picks a free one) and [web] host"
            ) from None


#: Exit code when an installed Kafka library lacks a private part cxpulse needs.
EXIT_INCOMPATIBLE = 6


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.kafka import compat
    from cxpulse.agents.worker.app import (
        QuietWorker,
        changelog_topics,
        create_app,
        internal_topics,
    )
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
        if settings.web_port != 0:  # a local mistake: say it before waiting for a broker
            _check_port_free(settings.web_host, settings.web_port)
        _connect(settings, bootstrap)
        settings = _with_web_port(settings)
        app = create_app(settings, url, embedded=embedded)
        register(app, settings)
        plan = topic_plan(
            settings,
            embedded=embedded,
            changelogs=changelog_topics(app),
            internal=internal_topics(settings),
        )
        report = asyncio.run(apply_topics(bootstrap, plan, broker=settings.broker))
        _report_differences(report)
        CollectionPolicy.freeze_startup()
        QuietWorker.log_format = settings.log.format
        worker = QuietWorker(app, loglevel=settings.worker.log_level.upper(), quiet=True)
        worker.execute_from_commandline()
    return 0


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    """Create the missing topics with the plan, or only check (``--check``); report every
    difference on existing ones; exit 5 when any differs or is missing, unless allowed."""
    from cxpulse.agents.worker.app import changelog_topics, create_app, internal_topics
    from cxpulse.agents.worker.pipeline import register

    url = args.broker or settings.broker.url
    if not url:
        say("topics: give --broker kafka://host:port (or [broker] url)")
        return 2
    embedded = bool(args.embedded)
    app = create_app(settings, url, embedded=embedded)
    register(app, settings)
    plan = topic_plan(
        settings,
        embedded=embedded,
        changelogs=changelog_topics(app),
        internal=internal_topics(settings),
    )
    bootstrap = _bootstrap(url)
    _connect(settings, bootstrap)
    report = asyncio.run(
        apply_topics(bootstrap, plan, broker=settings.broker, create=not args.check)
    )
    for spec in plan:
        state = (
            "created"
            if spec.name in report.created
            else "MISSING"
            if spec.name in report.missing
            else "exists"
        )
        configs = " ".join(f"{k}={v}" for k, v in spec.configs.items())
        print(
            f"{state:8} {spec.name} ({spec.role}) partitions={spec.partitions}"
            f" replication_factor={spec.replication_factor} {configs}"
        )
    for line in report.differences:
        print(f"DIFFERS  {line}")
    if report.ok:
        return 0
    if args.allow_differences:
        return 0
    say(
        f"{len(report.differences)} difference(s), {len(report.missing)} missing topic(s)"
        " — change the topics or [topics], or pass --allow-differences"
    )
    return EXIT_TOPICS_DIFFER


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.config_toml import settings_to_toml

    print(settings_to_toml(settings), end="")
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
    from cxpulse.agents.tools.replay import replay_file

    url = _broker_url(args, settings, "replay")
    if url is None:
        return 2
    bootstrap = _bootstrap(url)
    _connect(settings, bootstrap)
    _tool_topics(settings, bootstrap)
    n = asyncio.run(replay_file(Path(args.file), bootstrap, settings, close=not args.no_close))
    print(f"cxpulse replay: produced {n} records", file=sys.stderr)
    return 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from cxpulse.agents.tools.replay import generate

    url = _broker_url(args, settings, "generate")
    if url is None:
        return 2
    bootstrap = _bootstrap(url)
    _connect(settings, bootstrap)
    _tool_topics(settings, bootstrap)
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


def _benchmarks_importable() -> bool:
    """``benchmarks/`` is not installed: it runs from a source checkout (the current folder)."""
    import importlib.util

    if importlib.util.find_spec("benchmarks") is not None:
        return True
    here = Path.cwd()
    if (here / "benchmarks" / "run.py").is_file():
        sys.path.insert(0, str(here))
        return True
    return False


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    if not _benchmarks_importable():
        say("bench runs from a source checkout (benchmarks/ is not installed): run it there")
        return 2
    if args.peers:
        from benchmarks.peers.run import main as peers_main

        return peers_main(
            args.events or 200_000,
            (args.event_time_rate,),
            args.contenders,
            args.out or "benchmarks/results-peers.json",
            rounds=args.repeat,
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
        rounds=args.repeat,
    )


def _rounds(text: str) -> int:
    """A positive whole number of rounds; argparse turns the ValueError into a usage error."""
    rounds = int(text)
    if rounds < 1:
        raise ValueError(text)
    return rounds


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cxpulse")
    except PackageNotFoundError:
        return "unknown"


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
    config_help = "TOML config file (default: $CXPULSE_CONFIG)"
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--version", action="version", version=f"cxpulse {_version()}")
    # --config after the command too: a subcommand's default must not hide the main one's
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=config_help)

    class Sub(argparse._SubParsersAction):
        def add_parser(self, name: str, **kw: Any) -> argparse.ArgumentParser:
            return super().add_parser(name, parents=[common], **kw)

    parser.register("action", "parsers", Sub)
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

    p = sub.add_parser(
        "topics", help="create the missing topics with explicit settings; report differences"
    )
    p.add_argument("--broker", help="kafka://host:port (default: [broker] url)")
    p.add_argument("--check", action="store_true", help="create nothing, only check")
    p.add_argument(
        "--allow-differences",
        action="store_true",
        help="exit 0 even when existing topics differ from the plan (they are still listed)",
    )
    p.add_argument(
        "--embedded",
        action="store_true",
        help="the broker is the embedded one (replication factor 1 unless configured)",
    )
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("config", help="print the effective configuration as TOML (no secrets)")
    p.set_defaults(func=cmd_config)

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
        "--repeat",
        type=_rounds,
        default=1,
        help="rounds: run everything N times, the order counterbalanced, and add each"
        " figure's median and range and mixed ÷ survey within each round (default: 1);"
        " with --peers, every contender once a round, each ratio taken within its round",
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
    configure_logging(settings.log.format, settings.worker.log_level)
    started = time.monotonic()
    try:
        code: int = args.func(args, settings)
    except BrokerError as exc:
        say(str(exc))
        return exc.exit_code
    except PortInUse as exc:
        say(str(exc))
        return 2
    log.debug("%s took %.1fs", args.command, time.monotonic() - started)
    return code


if __name__ == "__main__":
    sys.exit(main())
