"""``[broker]`` security, ``[log]``, ``[web]`` and ``[topics]`` replication settings, and how
the security reaches every Kafka client (aiokafka keyword arguments, Faust credentials)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import errors as kafka_errors
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from cxpulse.agents.kafka.admin import DEADLETTER_MAX_MESSAGE_BYTES, topic_plan
from cxpulse.agents.kafka.security import (
    EXIT_SECURITY,
    _security_error,
    _unreachable,
    client_options,
    faust_credentials,
)
from cxpulse.agents.worker.app import changelog_topics, create_app, internal_topics
from cxpulse.agents.worker.pipeline import register
from cxpulse.streams.settings import ConfigError, Secret, Settings, load_settings

URL = {"CXPULSE_BROKER_URL": "kafka://k1:9093"}


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_message = message
    return exc


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, reason)
    exc.reason = reason
    return exc


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed CA and a client certificate and key (openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pem")
    for name in ("ca", "client"):
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}"],
            cwd=d, check=True, capture_output=True,
        )  # fmt: skip
    (d / "password").write_text("from-a-file\n")
    (d / "garbage.pem").write_text("not a certificate\n")
    return {p.stem if p.suffix != ".key" else p.stem + "_key": str(p) for p in d.iterdir()}


def _load(env: dict[str, str]) -> Settings:
    return load_settings(env={**URL, **env})


def _sasl_ssl(pem: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "CXPULSE_BROKER_SECURITY_PROTOCOL": "SASL_SSL",
        "CXPULSE_BROKER_SSL_CAFILE": pem["ca"],
        "CXPULSE_BROKER_SASL_MECHANISM": "SCRAM-SHA-512",
        "CXPULSE_BROKER_SASL_USERNAME": "cxpulse",
        "CXPULSE_BROKER_SASL_PASSWORD_ENV": "KAFKA_PASSWORD",
        "KAFKA_PASSWORD": "from-the-env",
        **extra,
    }


def test_plaintext_is_the_default_and_gives_plain_clients() -> None:
    s = _load({})
    assert (s.broker.security_protocol, s.broker.uses_tls, s.broker.uses_sasl) == (
        "PLAINTEXT",
        False,
        False,
    )
    assert client_options(s.broker) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(s.broker) is None


def test_sasl_ssl_scram_reaches_aiokafka_and_faust(pem: dict[str, str]) -> None:
    s = _load(_sasl_ssl(pem))
    assert s.broker.sasl_password == Secret("from-the-env")
    options = client_options(s.broker)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "cxpulse"
    assert options["sasl_plain_password"] == "from-the-env"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    # Faust turns its credentials into the same aiokafka arguments for its consumer/producer
    auth = credentials_to_aiokafka_auth(faust_credentials(s.broker))
    assert {k: auth[k] for k in ("security_protocol", "sasl_mechanism")} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
    }
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == (
        "cxpulse",
        "from-the-env",
    )
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


def test_the_worker_app_carries_the_credentials(pem: dict[str, str]) -> None:
    s = _load(_sasl_ssl(pem))
    app: Any = create_app(s, "kafka://k1:9093", embedded=False)
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["sasl_plain_password"] == "from-the-env"
    assert auth["security_protocol"] == "SASL_SSL"
    assert app.conf.topic_replication_factor == 3
    assert app.conf.web_bind == "0.0.0.0"


def test_mutual_tls_and_no_hostname_check(pem: dict[str, str]) -> None:
    s = _load(
        {
            "CXPULSE_BROKER_SECURITY_PROTOCOL": "ssl",
            "CXPULSE_BROKER_SSL_CAFILE": pem["ca"],
            "CXPULSE_BROKER_SSL_CERTFILE": pem["client"],
            "CXPULSE_BROKER_SSL_KEYFILE": pem["client_key"],
            "CXPULSE_BROKER_SSL_CHECK_HOSTNAME": "false",
        }
    )
    assert s.broker.security_protocol == "SSL"
    options = client_options(s.broker)
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["ssl_context"].check_hostname is False
    creds = faust_credentials(s.broker)
    assert credentials_to_aiokafka_auth(creds)["security_protocol"] == "SSL"


def test_password_from_a_file_without_its_newline(pem: dict[str, str]) -> None:
    env = _sasl_ssl(pem, CXPULSE_BROKER_SASL_PASSWORD_FILE=pem["password"])
    del env["CXPULSE_BROKER_SASL_PASSWORD_ENV"]
    s = _load(env)
    assert s.broker.sasl_password is not None
    assert s.broker.sasl_password.reveal() == "from-a-file"


def test_the_password_is_never_in_a_repr(pem: dict[str, str]) -> None:
    s = _load(_sasl_ssl(pem))
    for text in (repr(s), str(s), repr(s.broker), str(s.broker.sasl_password)):
        assert "from-the-env" not in text
    assert repr(s.broker.sasl_password) == "Secret('***')"
    assert "from-the-env" not in repr(faust_credentials(s.broker))


@pytest.mark.parametrize(
    ("env", "key", "message"),
    [
        (
            {"CXPULSE_BROKER_SECURITY_PROTOCOL": "TLS"},
            "broker.security_protocol",
            "expected one of",
        ),
        (
            {
                "CXPULSE_BROKER_SSL_CAFILE": "/nonexistent/ca.pem",
                "CXPULSE_BROKER_SECURITY_PROTOCOL": "SSL",
            },
            "broker.ssl_cafile",
            "is not a readable file",
        ),
        (
            {"CXPULSE_BROKER_SSL_CAFILE": "GARBAGE", "CXPULSE_BROKER_SECURITY_PROTOCOL": "SSL"},
            "broker.ssl_cafile",
            "no usable PEM",
        ),
        (
            {"CXPULSE_BROKER_SSL_CAFILE": "CA"},
            "broker.ssl_cafile",
            "only used with security_protocol SSL or SASL_SSL",
        ),
        (
            {"CXPULSE_BROKER_SECURITY_PROTOCOL": "SSL", "CXPULSE_BROKER_SSL_CERTFILE": "CLIENT"},
            "broker.ssl_keyfile",
            "go together",
        ),
        (
            {"CXPULSE_BROKER_SECURITY_PROTOCOL": "SSL", "CXPULSE_BROKER_SSL_CHECK_HOSTNAME": "no"},
            "broker.ssl_check_hostname",
            "expected true or false",
        ),
        (
            {"CXPULSE_BROKER_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "broker.sasl_mechanism",
            "expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            {
                "CXPULSE_BROKER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CXPULSE_BROKER_SASL_MECHANISM": "PLAIN",
            },
            "broker.sasl_username",
            "required",
        ),
        (
            {
                "CXPULSE_BROKER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CXPULSE_BROKER_SASL_MECHANISM": "PLAIN",
                "CXPULSE_BROKER_SASL_USERNAME": "u",
            },
            "broker.sasl_password_file",
            "exactly one of",
        ),
        (
            {
                "CXPULSE_BROKER_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "CXPULSE_BROKER_SASL_MECHANISM": "PLAIN",
                "CXPULSE_BROKER_SASL_USERNAME": "u",
                "CXPULSE_BROKER_SASL_PASSWORD_ENV": "UNSET_PASSWORD_VARIABLE",
            },
            "broker.sasl_password_env",
            "UNSET_PASSWORD_VARIABLE is not set",
        ),
        (
            {"CXPULSE_BROKER_SASL_USERNAME": "u"},
            "broker.sasl_username",
            "only used with security_protocol SASL_PLAINTEXT or SASL_SSL",
        ),
        ({"CXPULSE_BROKER_SASL_PASSWORD": "literal"}, "broker.sasl_password", "never read"),
        ({"CXPULSE_BROKER_CONNECT_TIMEOUT": "soon"}, "broker.connect_timeout", ""),
        ({"CXPULSE_LOG_FORMAT": "xml"}, "log.format", "expected one of text, json"),
        ({"CXPULSE_WEB_HOST": "a host"}, "web.host", "IP address or a host name"),
        ({"CXPULSE_TOPICS_REPLICATION_FACTOR": "0"}, "topics.replication_factor", "between 1 and"),
        ({"CXPULSE_TOPICS_KPI_RETENTION": "0s"}, "topics.kpi_retention", "positive"),
    ],
)
def test_bad_security_values_name_the_key(
    pem: dict[str, str], env: dict[str, str], key: str, message: str
) -> None:
    files = {"CA": pem["ca"], "CLIENT": pem["client"], "GARBAGE": pem["garbage"]}
    env = {k: files.get(v, v) for k, v in env.items()}
    with pytest.raises(ConfigError) as err:
        _load(env)
    assert err.value.key == key
    assert message in err.value.message


def test_the_embedded_broker_is_plaintext_only() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"CXPULSE_BROKER_SECURITY_PROTOCOL": "SSL"})
    assert err.value.key == "broker.security_protocol"
    assert "embedded broker" in err.value.message


def test_a_literal_password_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[broker]\nurl = "kafka://k:9092"\nsasl_password = "hunter2"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert err.value.key == "broker.sasl_password"
    assert "hunter2" not in str(err.value)


def test_log_web_and_topics_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[log]\nformat = "json"\n[web]\nhost = "127.0.0.1"\nport = 0\n'
        '[topics]\nreplication_factor = 2\nkpi_retention = "3d"\n'
    )
    s = load_settings(path, env={})
    assert (s.log.format, s.web_host, s.web_port) == ("json", "127.0.0.1", 0)
    assert s.topics.replication_factor == 2 and s.topics.kpi_retention_ms == 3 * 86_400_000
    d = Settings()
    assert (d.log.format, d.web_host, d.topics.replication_factor) == ("text", "0.0.0.0", None)


def test_replication_factor_default_depends_on_the_broker() -> None:
    t = Settings().topics
    assert (t.replication_factor_for(embedded=True), t.replication_factor_for(embedded=False)) == (
        1,
        3,
    )
    two = load_settings(env={"CXPULSE_TOPICS_REPLICATION_FACTOR": "2"}).topics
    assert two.replication_factor_for(embedded=True) == 2


def test_topic_plan_covers_every_topic_with_explicit_settings() -> None:
    s = load_settings(env={"CXPULSE_WORKER_APP_ID": "cxp"})
    app: Any = create_app(s, "kafka://k:9092", embedded=False)
    register(app, s)
    plan = {
        spec.name: spec
        for spec in topic_plan(
            s, embedded=False, changelogs=changelog_topics(app), internal=internal_topics(s)
        )
    }
    for name in (*s.topics.inputs, "cx.kpi", "cx.alerts", "cx.deadletter", "cxp.partials"):
        assert name in plan
    assert "cxp-__assignor-__leader" in plan and plan["cxp-__assignor-__leader"].partitions == 1
    changelogs = [spec for spec in plan.values() if spec.role == "changelog"]
    assert {c.name for c in changelogs} >= {
        "cxp-survey-state-changelog",
        "cxp-merge-state-changelog",
    }
    for spec in plan.values():
        assert spec.replication_factor == 3
        assert spec.configs["min.insync.replicas"] == "2"
        want = "compact" if spec.role == "changelog" else "delete"
        assert spec.configs["cleanup.policy"] == want
    assert plan["cx.kpi"].configs["retention.ms"] == str(7 * 86_400_000)
    assert plan["cx.alerts"].configs["retention.ms"] == str(30 * 86_400_000)
    dead = plan["cx.deadletter"].configs
    assert int(dead["max.message.bytes"]) == DEADLETTER_MAX_MESSAGE_BYTES
    # a 1 MiB source record, not UTF-8, in a dead letter: base64 inside JSON
    assert DEADLETTER_MAX_MESSAGE_BYTES > (1 << 20) * 4 // 3 + 4096
    embedded = topic_plan(s, embedded=True)
    assert {(p.replication_factor, p.configs["min.insync.replicas"]) for p in embedded} == {
        (1, "1")
    }


ROOT = Path(__file__).resolve().parents[2]


def _with_test_files(text: str, pem: dict[str, str]) -> str:
    """The documented config with its certificate paths pointing at this test's files."""
    for name, key in (("ca.pem", "ca"), ("client.pem", "client"), ("client.key", "client_key")):
        text = text.replace(f"/etc/cxpulse/tls/{name}", pem[key])
    return text


def _toml_blocks(markdown: str) -> list[str]:
    return [block.split("```", 1)[0] for block in markdown.split("```toml\n")[1:]]


def test_the_example_secure_cluster_config_loads(pem: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "secure.toml"
    text = (ROOT / "deploy/examples/secure-cluster.toml").read_text()
    path.write_text(_with_test_files(text, pem))
    s = load_settings(path, env={"KAFKA_PASSWORD": "pw"})
    assert (s.broker.security_protocol, s.broker.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert s.broker.sasl_password == Secret("pw")
    assert s.topics.replication_factor == 3 and s.log.format == "json"
    options = client_options(s.broker)
    assert options["sasl_plain_username"] == "cxpulse"


def test_the_documented_configs_load(pem: dict[str, str], tmp_path: Path) -> None:
    blocks = _toml_blocks((ROOT / "docs/security.md").read_text())
    assert len(blocks) == 2
    protocols = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"doc{i}.toml"
        path.write_text(_with_test_files(block, pem))
        protocols.append(load_settings(path, env={"KAFKA_PASSWORD": "pw"}).broker)
    assert [b.security_protocol for b in protocols] == ["SASL_SSL", "SSL"]
    assert protocols[1].ssl_certfile == pem["client"]


@pytest.mark.parametrize(
    ("exc", "code", "check"),
    [
        (ssl.SSLCertVerificationError(1, "x"), 4, "check [broker] ssl_cafile"),
        (_verify_error("Hostname mismatch, certificate is not valid for 'k1'."), 4,
         "check [broker] ssl_check_hostname"),
        (_ssl_error("TLSV1_ALERT_UNKNOWN_CA"), 4, "check [broker] ssl_certfile and ssl_keyfile"),
        (_ssl_error("WRONG_VERSION_NUMBER"), 4, "security_protocol (the listener does not"),
        (kafka_errors.SaslAuthenticationFailed(), 4, "check [broker] sasl_username and the pa"),
        (kafka_errors.UnsupportedSaslMechanismError(), 4, "check [broker] sasl_mechanism"),
        (ConnectionRefusedError(), 3, "connection refused (tried for 2s) — check [broker] url"),
        (TimeoutError(), 3, "security_protocol (now SASL_SSL)"),
    ],
)  # fmt: skip
def test_each_connection_failure_becomes_one_line(
    pem: dict[str, str], exc: BaseException, code: int, check: str
) -> None:
    broker = _load(_sasl_ssl(pem)).broker
    security = _security_error(exc, "k1:9093", broker)
    if code == 4:
        assert security is not None and security.exit_code == EXIT_SECURITY
        assert check in str(security) and "\n" not in str(security)
    else:
        assert security is None
        assert check in _unreachable(exc, "k1:9093", broker, 2.0)
