"""How every Kafka client cxpulse creates connects: TLS, SASL, and one start-up check.

Every client (Faust's consumer and producer, the admin client, the true-end probe,
``replay``, ``generate``, ``kpis``, ``topics``) gets its security from
:func:`client_options` (aiokafka keyword arguments) or :func:`faust_credentials`
(Faust's ``broker_credentials``), both built from one
:class:`~cxpulse.streams.settings.BrokerSettings`.

Before anything starts, :func:`wait_for_kafka` opens one connection of its own per
bootstrap server (TCP, TLS, ``ApiVersions``, SASL: what every client does first) and
turns the failure into one :class:`BrokerError` line that says what failed, where, and
which setting to check, with the exit code of ``docs/operations.md``: a refused or
silent broker is retried until ``[broker] connect_timeout`` (:data:`EXIT_UNREACHABLE`);
an untrusted certificate or a refused password is final at once (:data:`EXIT_SECURITY`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

from aiokafka import errors as kafka_errors
from aiokafka.conn import create_conn
from aiokafka.helpers import create_ssl_context

from cxpulse.streams.settings import BrokerSettings

__all__ = [
    "EXIT_SECURITY",
    "EXIT_UNREACHABLE",
    "BrokerError",
    "client_options",
    "faust_credentials",
    "ssl_context",
    "wait_for_kafka",
]

#: exit codes (docs/operations.md); 2 is a bad config or usage
EXIT_UNREACHABLE = 3
EXIT_SECURITY = 4

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
