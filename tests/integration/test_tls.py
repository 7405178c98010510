"""Kafka over TLS for real: the embedded broker behind a TLS-terminating proxy (stunnel).

The test makes its own certificate authority (openssl CLI): a server certificate for
127.0.0.1, a client certificate (the proxy requires one: mutual TLS), and a second,
untrusted CA. Tansu advertises the proxy's port, so every connection a client makes
after bootstrapping (metadata, group coordinator, fetches, the worker's true-end
probe) goes through TLS too. A worker computes the oracle's final survey records
over mutual TLS (the plaintext path is held to the same oracle in
``test_survey_pipeline``); a worker given the wrong CA, or no client certificate,
stops at once with one line naming the setting and exit code 4.

SASL: the embedded broker has no SASL users here (Tansu 0.6 can require SCRAM, but
its ``user create`` needs an authenticated connection, so a memory-storage broker
cannot get a first user). What runs for real is the SASL handshake against a broker
that refuses it: one line naming ``sasl_mechanism``, exit code 4, and the password
nowhere in the output.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from cxpulse.agents.kafka.security import (
    EXIT_SECURITY,
    EXIT_UNREACHABLE,
    client_options,
    wait_for_kafka,
)
from cxpulse.agents.tools.broker import EmbeddedBroker, _port_open, free_port
from cxpulse.streams.settings import BrokerSettings, load_settings
from tests.integration.harness import (
    ROOT,
    WorkerProcess,
    check_finals,
    produce,
    wait_for_finals,
    worker_env,
)
from tests.integration.test_survey_pipeline import (
    build_dataset,
    closing,
    encode,
    expected_finals,
)

pytestmark = pytest.mark.integration


def _need(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.skip(f"{names[0]} is not installed (apt-get install {names[0]}; `make test` does)")


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    untrusted_ca: Path
    untrusted_key: Path
    #: signed by the CA for another host name only
    elsewhere_cert: Path
    elsewhere_key: Path


def _openssl(openssl: str, cwd: Path, *args: str) -> None:
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate it signed, and
    an unrelated self-signed CA."""
    openssl = _need("openssl")
    d = tmp_path_factory.mktemp("pki")
    ssl = ("-days", "2", "-nodes", "-newkey", "rsa:2048")
    _openssl(openssl, d, "req", "-x509", *ssl, "-keyout", "ca.key", "-out", "ca.pem",
             "-subj", "/CN=cxpulse test CA")  # fmt: skip
    _openssl(openssl, d, "req", "-x509", *ssl, "-keyout", "other.key", "-out", "other.pem",
             "-subj", "/CN=untrusted CA")  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "elsewhere.ext").write_text("subjectAltName=DNS:kafka.elsewhere.test\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (
        ("server", "/CN=127.0.0.1"),
        ("elsewhere", "/CN=elsewhere"),
        ("client", "/CN=cx"),
    ):
        _openssl(openssl, d, "req", *ssl, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject)  # fmt: skip
        _openssl(openssl, d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                 "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2",
                 "-extfile", f"{name}.ext")  # fmt: skip
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem",
               d / "client.key", d / "other.pem", d / "other.key", d / "elsewhere.pem",
               d / "elsewhere.key")  # fmt: skip


@dataclass(frozen=True)
class TlsBroker:
    url: str
    proxy_log: Path
    #: the same broker behind a certificate for another host name (bootstrap only:
    #: the broker advertises ``url``'s port)
    elsewhere_url: str


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """Tansu on a private port behind stunnel (TLS, client certificate required)."""
    stunnel = _need("stunnel4", "stunnel")
    d = tmp_path_factory.mktemp("tls")
    broker_port, tls_port, elsewhere_port = free_port(), free_port(), free_port()
    log = d / "stunnel.log"
    conf = d / "stunnel.conf"
    conf.write_text(
        "foreground = yes\npid =\n"
        f"output = {log}\ndebug = 5\n"
        "[kafka]\n"
        f"accept = 127.0.0.1:{tls_port}\nconnect = 127.0.0.1:{broker_port}\n"
        f"cert = {pki.server_cert}\nkey = {pki.server_key}\n"
        f"CAfile = {pki.ca}\nverifyChain = yes\nrequireCert = yes\n"
        "[elsewhere]\n"
        f"accept = 127.0.0.1:{elsewhere_port}\nconnect = 127.0.0.1:{broker_port}\n"
        f"cert = {pki.elsewhere_cert}\nkey = {pki.elsewhere_key}\n"
        f"CAfile = {pki.ca}\nverifyChain = yes\nrequireCert = yes\n"
    )
    # The broker first: its port is taken before stunnel, which connects to it for every
    # probe of its own ports, or anything else can reach for it.
    with EmbeddedBroker(port=broker_port, advertised_port=tls_port, log_path=str(d / "tansu.log")):
        proxy = subprocess.Popen(
            [stunnel, str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 10
            while not all(_port_open("127.0.0.1", p) for p in (tls_port, elsewhere_port)):
                assert proxy.poll() is None, (
                    f"stunnel exited: {log.read_text() if log.exists() else ''}"
                )
                assert time.monotonic() < deadline, "stunnel did not listen within 10 s"
                time.sleep(0.1)
            yield TlsBroker(
                f"kafka://127.0.0.1:{tls_port}", log, f"kafka://127.0.0.1:{elsewhere_port}"
            )
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=10)


def _tls_env(broker: TlsBroker, pki: Pki, *, ca: Path, client_cert: bool = True) -> dict[str, str]:
    env = {
        "CXPULSE_BROKER_URL": broker.url,
        "CXPULSE_BROKER_SECURITY_PROTOCOL": "SSL",
        "CXPULSE_BROKER_SSL_CAFILE": str(ca),
    }
    if client_cert:
        env["CXPULSE_BROKER_SSL_CERTFILE"] = str(pki.client_cert)
        env["CXPULSE_BROKER_SSL_KEYFILE"] = str(pki.client_key)
    return env


def test_worker_over_mutual_tls_gives_the_oracles_final_records(
    tls_broker: TlsBroker, pki: Pki, unique: str, tmp_path: Path
) -> None:
    records = build_dataset(seed=11, invitations=300)
    expected = expected_finals(records)
    env = worker_env(unique, tls_broker.url, **_tls_env(tls_broker, pki, ca=pki.ca))
    security = load_settings(env=env).broker
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        worker.wait_healthy()
        topic = env["CXPULSE_TOPICS_SURVEY"]
        assert security.bootstrap_servers is not None
        tls = client_options(security)
        for batch in (records, closing(records)):
            encoded = [encode(r) for r in batch]
            asyncio.run(produce(security.bootstrap_servers, topic, encoded, **tls))
        finals = asyncio.run(
            wait_for_finals(
                security.bootstrap_servers,
                env["CXPULSE_TOPICS_KPI"],
                expected,
                **tls,
            )
        )
        check_finals(finals, expected)
    finally:
        worker.stop()
    assert "Traceback" not in worker.log_tail(400), worker.log_tail()
    proxy_log = tls_broker.proxy_log.read_text()
    assert "Certificate accepted at depth=0: CN=cx" in proxy_log  # the client's certificate
    assert proxy_log.count("accepted connection") >= 3  # bootstrap, coordinator, fetches...


def _run_worker(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``cxpulse worker`` with ``env`` on top of ours, its output captured."""
    return _cxpulse("worker", env=env, timeout=timeout)


def _cxpulse(
    *argv: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cxpulse.agents.cli", *argv],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_worker_that_does_not_trust_the_brokers_certificate_stops_with_one_line(
    tls_broker: TlsBroker, pki: Pki
) -> None:
    port = tls_broker.url.rsplit(":", 1)[1]
    started = time.monotonic()
    done = _run_worker(_tls_env(tls_broker, pki, ca=pki.untrusted_ca))
    assert done.returncode == EXIT_SECURITY, done.stderr
    assert time.monotonic() - started < 30  # no retrying a certificate that cannot change
    assert done.stderr == (
        f"cxpulse: TLS handshake with 127.0.0.1:{port} failed: certificate verify failed"
        " (self-signed certificate in certificate chain) — check [broker] ssl_cafile\n"
    )
    assert done.stdout == ""


def test_a_worker_without_a_client_certificate_stops_with_one_line(
    tls_broker: TlsBroker, pki: Pki
) -> None:
    done = _run_worker(_tls_env(tls_broker, pki, ca=pki.ca, client_cert=False))
    assert done.returncode == EXIT_SECURITY, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "check [broker] ssl_certfile and ssl_keyfile" in done.stderr


def test_plaintext_to_the_tls_port_names_security_protocol(tls_broker: TlsBroker) -> None:
    env = {"CXPULSE_BROKER_URL": tls_broker.url, "CXPULSE_BROKER_CONNECT_TIMEOUT": "2s"}
    done = _run_worker(env)
    assert done.returncode == EXIT_UNREACHABLE, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "security_protocol (now PLAINTEXT)" in done.stderr


def test_sasl_refused_by_the_broker_names_the_mechanism_and_hides_the_password(
    broker: EmbeddedBroker,
) -> None:
    password = "s3cret-never-shown"
    env = {
        "CXPULSE_BROKER_URL": broker.url,
        "CXPULSE_BROKER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CXPULSE_BROKER_SASL_MECHANISM": "SCRAM-SHA-512",
        "CXPULSE_BROKER_SASL_USERNAME": "cx",
        "CXPULSE_BROKER_SASL_PASSWORD_ENV": "CX_TEST_KAFKA_PASSWORD",
        "CX_TEST_KAFKA_PASSWORD": password,
        "CXPULSE_WORKER_LOG_LEVEL": "debug",
    }
    done = _run_worker(env)
    assert done.returncode == EXIT_SECURITY, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"cxpulse: the broker at {broker.bootstrap} does not accept SASL SCRAM-SHA-512"
        " — check [broker] sasl_mechanism and security_protocol"
    )
    assert "aiokafka.conn" in done.stderr  # debug logging was on, and said much
    assert password not in done.stdout + done.stderr


def test_a_refused_broker_is_one_line_after_the_connect_timeout() -> None:
    started = time.monotonic()
    done = _run_worker(
        {"CXPULSE_BROKER_CONNECT_TIMEOUT": "2s", "CXPULSE_BROKER_URL": "kafka://127.0.0.1:1"}
    )
    assert done.returncode == EXIT_UNREACHABLE
    assert done.stderr == (
        "cxpulse: cannot connect to 127.0.0.1:1: connection refused (tried for 2s)"
        " — check [broker] url (or --broker)\n"
    )
    assert time.monotonic() - started < 20


def test_the_tools_connect_over_mutual_tls(tls_broker: TlsBroker, pki: Pki, unique: str) -> None:
    """``generate`` produces, ``kpis`` watches and ``topics`` checks, all over mutual TLS."""
    env = {**worker_env(unique, tls_broker.url), **_tls_env(tls_broker, pki, ca=pki.ca)}
    generated = _cxpulse("generate", "--rate", "20", "--duration", "2", env=env)
    assert generated.returncode == 0, generated.stderr
    watched = _cxpulse("kpis", "--duration", "1", env=env)
    assert watched.returncode == 0, watched.stderr
    checked = _cxpulse("topics", "--check", env=env)
    # generate made the inputs and outputs; the worker's changelogs do not exist yet
    assert checked.returncode == 5, checked.stderr
    assert f"exists   {env['CXPULSE_TOPICS_SURVEY']} (input)" in checked.stdout
    assert "DIFFERS" not in checked.stdout
    security = load_settings(env=env).broker
    survey = asyncio.run(_count(security, env["CXPULSE_TOPICS_SURVEY"]))
    assert survey > 20  # two seconds of invitations, answers and heartbeats


async def _count(security: BrokerSettings, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=security.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        **client_options(security),
    )
    await consumer.start()
    try:
        n = 0
        quiet = time.monotonic()
        while time.monotonic() - quiet < 2.0:
            batch = await consumer.getmany(timeout_ms=300)
            if any(batch.values()):
                quiet = time.monotonic()
            n += sum(len(records) for records in batch.values())
        return n
    finally:
        await consumer.stop()


def test_a_certificate_for_another_host_is_refused_unless_the_check_is_off(
    tls_broker: TlsBroker, pki: Pki
) -> None:
    env = {**_tls_env(tls_broker, pki, ca=pki.ca), "CXPULSE_BROKER_URL": tls_broker.elsewhere_url}
    done = _run_worker(env)
    assert done.returncode == EXIT_SECURITY, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "certificate verify failed" in done.stderr
    assert "check [broker] ssl_check_hostname (or the host name in [broker] url)" in done.stderr
    unchecked = load_settings(env={**env, "CXPULSE_BROKER_SSL_CHECK_HOSTNAME": "false"}).broker
    assert unchecked.bootstrap_servers is not None
    asyncio.run(wait_for_kafka(unchecked.bootstrap_servers, 10, broker=unchecked))
