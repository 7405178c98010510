"""Connecting to Kafka with the configured security, and the topics cxpulse needs.

Every client cxpulse creates (Faust's consumer and producer, the admin client, the
true-end probe, ``replay``, ``generate``, ``kpis``) gets its security from
:func:`client_options` (aiokafka keyword arguments) or :func:`faust_credentials`
(Faust's ``broker_credentials``), both built from one
:class:`~cxpulse.streams.settings.BrokerSettings`.

Before anything starts, :func:`wait_for_kafka` opens one connection of its own per
bootstrap server (TCP, TLS, ``ApiVersions``, SASL: what every client does first) and
turns the failure into one :class:`BrokerError` line that says what failed, where, and
which setting to check, with the exit code of ``docs/operations.md``: a refused or
silent broker is retried until the timeout (:data:`EXIT_UNREACHABLE`); an untrusted
certificate or a refused password is final at once (:data:`EXIT_SECURITY`).

Topics: :func:`topic_plan` says what every topic should look like (partitions,
replication factor, ``cleanup.policy``, retention, ``max.message.bytes``,
``min.insync.replicas``); :func:`apply_topics` creates the missing ones and reports
how existing ones differ, never changing them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.conn import create_conn
from aiokafka.helpers import create_ssl_context
from cxpulse.streams.settings import BrokerSettings, Settings

__all__ = [
    "DEADLETTER_MAX_MESSAGE_BYTES",
    "EXIT_SECURITY",
    "EXIT_TOPICS_DIFFER",
    "EXIT_UNREACHABLE",
    "BrokerError",
    "TopicReport",
    "TopicSpec",
    "apply_topics",
    "client_options",
    "ensure_topics",
    "faust_credentials",
    "ssl_context",
    "topic_plan",
    "wait_for_kafka",
]

log = logging.getLogger("cxpulse")

#: exit codes (docs/operations.md); 2 is a bad config or usage
EXIT_UNREACHABLE = 3
EXIT_SECURITY = 4
EXIT_TOPICS_DIFFER = 5

#: A dead letter carries a source record whole, base64 when not UTF-8 (4/3 of its size)
#: inside JSON: 4 MiB holds a source record of 3 MiB, three times Kafka's default limit.
DEADLETTER_MAX_MESSAGE_BYTES = 4 << 20

_TOPIC_ALREADY_EXISTS = 36
_PLAINTEXT = BrokerSettings()


class BrokerError(Exception):
    """The broker cannot be used: one line for the operator, and the exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------- credentials


def ssl_context(broker: BrokerSettings) -> ssl.SSLContext:
    """The TLS context of every client: the CA, the client certificate, the hostname check."""
    context = create_ssl_context(
        cafile=broker.ssl_cafile, certfile=broker.ssl_certfile, keyfile=broker.ssl_keyfile
    )
    context.check_hostname = broker.ssl_check_hostname
    return context


def client_options(broker: BrokerSettings | None) -> dict[str, Any]:
    """The security keyword arguments of an aiokafka client (consumer, producer, admin)."""
    broker = broker or _PLAINTEXT
    options: dict[str, Any] = {"security_protocol": broker.security_protocol}
    if broker.uses_tls:
        options["ssl_context"] = ssl_context(broker)
    if broker.uses_sasl:
        assert broker.sasl_password is not None  # the loader requires one with SASL
        options.update(
            sasl_mechanism=broker.sasl_mechanism,
            sasl_plain_username=broker.sasl_username,
            sasl_plain_password=broker.sasl_password.reveal(),
        )
    return options


def faust_credentials(broker: BrokerSettings) -> Any:
    """Faust's ``broker_credentials`` for these settings (None for PLAINTEXT)."""
    import faust

    context = ssl_context(broker) if broker.uses_tls else None
    if broker.uses_sasl:
        assert broker.sasl_password is not None
        return faust.SASLCredentials(
            username=broker.sasl_username,
            password=broker.sasl_password.reveal(),
            ssl_context=context,
            mechanism=broker.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


# --------------------------------------------------------------------------- connecting


def _servers(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        out.append((host.strip("[]") or server.strip(), int(port) if port else 9092))
    return out


def _security_error(exc: BaseException, where: str, broker: BrokerSettings) -> BrokerError | None:
    """The operator's line for a failure that retrying cannot fix, else None."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", None) or str(exc)
        check = (
            "ssl_check_hostname (or the host name in [broker] url)"
            if "hostname" in reason.lower() or "ip address mismatch" in reason.lower()
            else "ssl_cafile"
        )
        return BrokerError(
            f"TLS handshake with {where} failed: certificate verify failed ({reason})"
            f" — check [broker] {check}",
            EXIT_SECURITY,
        )
    if isinstance(exc, ssl.SSLError):
        reason = (getattr(exc, "reason", None) or str(exc)).upper()
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason:
            check = "security_protocol (the listener does not speak TLS)"
        elif any(word in reason for word in ("CERTIFICATE", "UNKNOWN_CA", "HANDSHAKE_FAILURE")):
            check = "ssl_certfile and ssl_keyfile (the broker wants a client certificate it trusts)"
        else:
            check = "security_protocol, ssl_cafile, ssl_certfile and ssl_keyfile"
        return BrokerError(
            f"TLS handshake with {where} failed: {getattr(exc, 'reason', None) or exc}"
            f" — check [broker] {check}",
            EXIT_SECURITY,
        )
    if isinstance(exc, _ClosedAfterHandshake):
        return BrokerError(
            f"the broker at {where} closed the connection after the TLS handshake"
            " — check [broker] ssl_certfile and ssl_keyfile (a client certificate it trusts)",
            EXIT_SECURITY,
        )
    if isinstance(exc, kafka_errors.UnsupportedSaslMechanismError):
        return BrokerError(
            f"the broker at {where} does not accept SASL {broker.sasl_mechanism}"
            " — check [broker] sasl_mechanism and security_protocol",
            EXIT_SECURITY,
        )
    if isinstance(
        exc,
        kafka_errors.SaslAuthenticationFailed
        | kafka_errors.AuthenticationFailedError
        | kafka_errors.IllegalSaslStateError
        | kafka_errors.AuthenticationMethodNotSupported
        | KeyError,  # aiokafka's SCRAM client on a malformed server answer
    ):
        return BrokerError(
            f"SASL {broker.sasl_mechanism} authentication as {broker.sasl_username!r}"
            f" failed at {where} — check [broker] sasl_username and the password"
            " (sasl_password_file or sasl_password_env)",
            EXIT_SECURITY,
        )
    return None


def _unreachable(exc: BaseException, where: str, broker: BrokerSettings, waited: float) -> str:
    if isinstance(exc, socket.gaierror):
        what = f"cannot resolve the host of {where} ({exc.strerror}; tried for {waited:.0f}s)"
    elif isinstance(exc, ConnectionRefusedError):
        what = f"cannot connect to {where}: connection refused (tried for {waited:.0f}s)"
    elif isinstance(exc, _ClosedBeforeAnswer):
        what = f"the broker at {where} closed the connection before answering (a TLS listener?)"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        what = f"no Kafka answer from {where} within {waited:.0f}s"
    else:
        text = str(exc)
        name = exc.__class__.__name__
        detail = text if text.startswith(name) else f"{name}: {text}"
        what = f"cannot talk Kafka with {where} ({detail})"
    check = "url (or --broker)"
    if not isinstance(exc, socket.gaierror | ConnectionRefusedError):
        check += f" and security_protocol (now {broker.security_protocol})"
    return f"{what} — check [broker] {check}"


class _ClosedAfterHandshake(Exception):
    """The TLS handshake completed, then the broker closed before answering."""


class _ClosedBeforeAnswer(ConnectionError):
    """A plaintext connection closed before the broker answered ``ApiVersions``."""


async def _raw_probe(host: str, port: int, broker: BrokerSettings, timeout: float) -> None:
    """TCP (and TLS), then one ``ApiVersions`` round trip on a plain asyncio stream.

    Tells apart what aiokafka reports as one "connection closed": with TLS 1.3 a server
    refuses a client certificate only after the handshake, with an alert read here;
    a TLS listener closes a plaintext client before answering.
    """
    from cxpulse.agents.tools.broker import _api_versions_request

    context = ssl_context(broker) if broker.uses_tls else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None),
        timeout,
    )
    try:
        writer.write(_api_versions_request(1))
        await writer.drain()
        await asyncio.wait_for(reader.readexactly(8), timeout)
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
        raise (_ClosedAfterHandshake() if context else _ClosedBeforeAnswer()) from exc
    finally:
        writer.close()


async def _probe(host: str, port: int, broker: BrokerSettings, timeout: float) -> None:
    """One connection as every client makes it: TCP, TLS, ApiVersions, then SASL."""
    await _raw_probe(host, port, broker, timeout)
    conn = await asyncio.wait_for(
        create_conn(
            host,
            port,
            client_id="cxpulse-probe",
            request_timeout_ms=max(100, int(timeout * 1000)),
            **client_options(broker),
        ),
        timeout,
    )
    conn.close()


async def wait_for_kafka(
    bootstrap: str, timeout: float | None = None, *, broker: BrokerSettings | None = None
) -> None:
    """Return once a bootstrap server completes a handshake; retry until then.

    Raises :class:`BrokerError`: at once for a security failure (an untrusted
    certificate, a refused password), after ``timeout`` seconds (default ``[broker]
    connect_timeout``) when no server answers.
    """
    broker = broker or _PLAINTEXT
    if timeout is None:
        timeout = broker.connect_timeout_ms / 1000
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout
    while True:
        last: tuple[BaseException, str] | None = None
        for host, port in _servers(bootstrap):
            where = f"{host}:{port}"
            attempt = min(5.0, max(0.2, deadline - loop.time()))
            try:
                await _probe(host, port, broker, attempt)
                return
            except Exception as exc:
                security = _security_error(exc, where, broker)
                if security is not None:
                    raise security from exc
                last = (exc, where)
        if loop.time() >= deadline and last is not None:
            error, where = last
            waited = loop.time() - started
            message = _unreachable(error, where, broker, waited)
            raise BrokerError(message, EXIT_UNREACHABLE) from error
        await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))


# --------------------------------------------------------------------------- topics


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What one topic should look like; ``role`` says what cxpulse uses it for."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]
    role: str


@dataclass(slots=True)
class TopicReport:
    """What :func:`apply_topics` did and saw: created, missing (not created) and differences."""

    created: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No topic is missing and none differs from its plan."""
        return not self.missing and not self.differences


def topic_plan(
    settings: Settings,
    *,
    embedded: bool,
    changelogs: Mapping[str, int] | None = None,
    internal: Mapping[str, int] | None = None,
    only: Iterable[str] | None = None,
) -> list[TopicSpec]:
    """Every topic cxpulse reads or writes, with its settings (docs/operations.md).

    Inputs and the worker's internal topics (``internal``: partials, ticks, the Faust
    leader topic) are ``delete`` with the broker's retention; ``cx.kpi``, ``cx.alerts``
    and ``cx.deadletter`` ``delete`` with ``[topics] *_retention``; table ``changelogs``
    ``compact``. Every topic asks ``min.insync.replicas`` = min(2, replication factor).
    ``only`` keeps the named topics (a tool needing a few of them).
    """
    t = settings.topics
    rf = t.replication_factor_for(embedded=embedded)
    isr = {"min.insync.replicas": str(min(2, rf))}
    n = t.partitions

    def spec(name: str, role: str, configs: Mapping[str, str], partitions: int = n) -> TopicSpec:
        return TopicSpec(name, partitions, rf, {"cleanup.policy": "delete", **configs, **isr}, role)

    from cxpulse.agents.worker.app import topic_names  # imports this module

    inputs = dict.fromkeys([*t.inputs, *topic_names(settings).sources.values()])
    plan = [spec(name, "input", {}) for name in inputs]
    plan.append(spec(t.kpi, "output", {"retention.ms": str(t.kpi_retention_ms)}))
    plan.append(spec(t.alerts, "output", {"retention.ms": str(t.alerts_retention_ms)}))
    dead = {
        "retention.ms": str(t.deadletter_retention_ms),
        "max.message.bytes": str(DEADLETTER_MAX_MESSAGE_BYTES),
    }
    plan.append(spec(t.deadletter, "output", dead))
    plan.extend(spec(name, "internal", {}, p) for name, p in (internal or {}).items())
    plan.extend(
        TopicSpec(name, p, rf, {"cleanup.policy": "compact", **isr}, "changelog")
        for name, p in (changelogs or {}).items()
    )
    if only is not None:
        wanted = set(only)
        plan = [s for s in plan if s.name in wanted]
    return plan


async def _describe(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec]
) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, str]]]:
    """Per topic (partitions, smallest replica count), and its configs as the broker says."""
    shapes: dict[str, tuple[int, int]] = {}
    for topic in await admin.describe_topics([s.name for s in specs]):
        if topic["error_code"] != 0:
            continue
        parts = topic["partitions"]
        shapes[topic["topic"]] = (len(parts), min((len(p["replicas"]) for p in parts), default=0))
    configs: dict[str, dict[str, str]] = {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, s.name) for s in specs]
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                continue
            configs[resource["resource_name"]] = {
                e["config_names"]: e["config_value"] for e in resource["config_entries"]
            }
    return shapes, configs


def _differences(spec: TopicSpec, shape: tuple[int, int], configs: Mapping[str, str]) -> list[str]:
    out = []
    partitions, replicas = shape
    if partitions != spec.partitions:
        out.append(f"{spec.name}: {partitions} partitions, the plan says {spec.partitions}")
    if replicas != spec.replication_factor:
        out.append(
            f"{spec.name}: replication factor {replicas}, the plan says {spec.replication_factor}"
        )
    for key, want in spec.configs.items():
        have = configs.get(key)
        if have != want:
            shown = "not set (the broker's default applies)" if have is None else f"{have}"
            out.append(f"{spec.name}: {key} is {shown}, the plan says {want}")
    return out


async def apply_topics(
    bootstrap: str,
    specs: Sequence[TopicSpec],
    *,
    broker: BrokerSettings | None = None,
    create: bool = True,
) -> TopicReport:
    """Create the missing topics of ``specs`` (unless not ``create``); report the others.

    Existing topics are never changed: how they differ from their spec (partitions,
    replication factor, configs) is in the report. Safe to race with another process
    creating the same topics. Raises ``RuntimeError`` when the broker refuses a topic.
    """
    report = TopicReport()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(broker))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        present = [s for s in specs if s.name in existing]
        if missing and create:
            new = [
                NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
                for s in missing
            ]
            response = (await admin.create_topics(new)).to_object()
            raced = set()
            for result in response.get("topic_errors", []):
                code = result["error_code"]
                if code == _TOPIC_ALREADY_EXISTS:
                    raced.add(result["topic"])
                elif code != 0:
                    message = result.get("error_message") or f"error code {code}"
                    raise RuntimeError(f"cannot create topic {result['topic']!r}: {message}")
            report.created = [s.name for s in missing if s.name not in raced]
            present += [s for s in missing if s.name in raced]
        elif missing:
            report.missing = [s.name for s in missing]
        if present:
            shapes, configs = await _describe(admin, present)
            for spec in present:
                report.checked.append(spec.name)
                shape = shapes.get(spec.name, (0, 0))
                report.differences += _differences(spec, shape, configs.get(spec.name, {}))
    finally:
        await admin.close()
    return report


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    broker: BrokerSettings | None = None,
    replication_factor: int = 1,
) -> None:
    """Create each missing topic with its number of partitions; existing ones are kept.

    For tests and the benchmark on the embedded broker (replication factor 1, no
    configs); the worker and the tools use :func:`topic_plan` and :func:`apply_topics`.
    """
    specs = [TopicSpec(name, n, replication_factor, {}, "any") for name, n in topics.items()]
    await apply_topics(bootstrap, specs, broker=broker)
