"""The ``cxpulse`` command's own behaviour: ``--version``, ``--config`` on either side of
the subcommand, ``cxpulse config`` (a TOML file that loads back to the same settings,
without the password), and the log formats."""

from __future__ import annotations

import io
import logging
import socket
import tempfile
import tomllib
from pathlib import Path

import orjson
import pytest

from cxpulse.agents import cli
from cxpulse.agents.logs import configure_logging
from cxpulse.agents.tools.config_toml import settings_to_toml
from cxpulse.streams.settings import load_settings

SPEC_LIKE = """
[broker]
url = "kafka://k1:9093,k2:9093"
security_protocol = "SASL_PLAINTEXT"
sasl_mechanism = "SCRAM-SHA-256"
sasl_username = "cxpulse"
sasl_password_env = "CX_TEST_PASSWORD"
connect_timeout = "40s"
[topics]
survey = "s"
partitions = 6
replication_factor = 2
deadletter_retention = "3d"
[windows]
list = ["15m/1m", "1h/1m", "7d/1h"]
[time]
allowed_lateness = "90s"
[tickets.sla]
urgent = "30m"
[tickets.business_hours]
timezone = "Europe/Madrid"
hours = { mon = "09:00-13:00, 14:00-18:00", fri = "09:00-15:00" }
holidays = ["2026-12-25"]
[[alerts.rules]]
name = "slow"
metric = "ticket_first_response_seconds"
window = "1h/1m"
baseline = "7d/1h"
direction = "rise"
threshold = "50%"
min_n = 20
stat = "p90"
[emit]
interval = "2s"
[web]
host = "127.0.0.1"
port = 7000
[log]
format = "json"
[worker]
app_id = "cx-a"
"""
ENV = {"CX_TEST_PASSWORD": "pa55-word"}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"cxpulse {cli._version()}"
    assert cli._version() != "unknown"


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "{path}", "worker", "--broker", "kafka://x:1"],
        ["worker", "--config", "{path}", "--broker", "kafka://x:1"],
        ["worker", "--broker", "kafka://x:1", "--config", "{path}"],
    ],
)
def test_config_before_or_after_the_subcommand(argv: list[str], tmp_path: Path) -> None:
    path = str(tmp_path / "c.toml")
    args = cli.build_parser().parse_args([a.format(path=path) for a in argv])
    assert (args.command, args.config, args.broker) == ("worker", path, "kafka://x:1")


def test_no_config_is_none() -> None:
    assert cli.build_parser().parse_args(["config"]).config is None


def test_config_prints_toml_that_loads_back_to_the_same_settings(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SPEC_LIKE)
    settings = load_settings(path, env=ENV)
    text = settings_to_toml(settings)
    assert "pa55-word" not in text
    assert "# sasl_password is read from $CX_TEST_PASSWORD" in text
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert load_settings(again, env=ENV) == settings


def test_config_of_the_defaults_loads_back() -> None:
    defaults = load_settings(env={})
    text = settings_to_toml(defaults)
    assert "ssl_" not in text and "sasl_" not in text  # PLAINTEXT: no TLS/SASL keys
    assert tomllib.loads(text)["web"] == {"host": "0.0.0.0", "port": 6066}
    assert load_settings_from_text(text) == defaults


def load_settings_from_text(text: str) -> object:
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(text)
        f.flush()
        return load_settings(f.name, env={})


def test_config_command_masks_and_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(SPEC_LIKE)
    monkeypatch.setenv("CX_TEST_PASSWORD", "pa55-word")
    assert cli.main(["config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'security_protocol = "SASL_PLAINTEXT"' in out and "pa55-word" not in out


def test_json_logs_are_one_object_per_line_for_every_logger() -> None:
    out = io.StringIO()
    configure_logging("json", "info", out)
    try:
        logging.getLogger("faust.tables").warning("a table:\n+---+\n| x |\n+---+")
        logging.getLogger("cxpulse").info("hello %s", "there")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("mode").exception("failed")
    finally:
        configure_logging("text", "warning")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    bodies = [orjson.loads(line) for line in lines]
    assert [b["logger"] for b in bodies] == ["faust.tables", "cxpulse", "mode"]
    assert bodies[0]["msg"] == "a table:\n+---+\n| x |\n+---+"
    assert bodies[1] == {**bodies[1], "level": "info", "msg": "hello there"}
    assert "ValueError: boom" in bodies[2]["exc"]
    assert bodies[0]["ts"].endswith("Z")


def test_text_logs_have_one_format() -> None:
    out = io.StringIO()
    configure_logging("text", "warning", out)
    try:
        logging.getLogger("faust.worker").warning("w")
        logging.getLogger("cxpulse").info("not shown at warning")
    finally:
        configure_logging("text", "warning")
    (line,) = out.getvalue().splitlines()
    stamp, level, name, message = line.split(" ", 3)
    assert (level, name, message) == ("WARNING", "faust.worker", "w")
    assert stamp.endswith("Z") and "T" in stamp


def test_the_demo_binds_the_loopback_with_one_replica() -> None:
    from cxpulse.agents.tools.demo import demo_env

    settings = load_settings(env=demo_env("kafka://127.0.0.1:9092", 7001))
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 7001)
    assert settings.topics.replication_factor_for(embedded=False) == 1


def test_a_taken_web_port_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("CXPULSE_WEB_HOST", "127.0.0.1")
        monkeypatch.setenv("CXPULSE_WEB_PORT", str(port))
        assert cli.main(["worker", "--broker", "kafka://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"cxpulse: cannot listen on 127.0.0.1:{port}: Address already in use"
        " — check [web] port (0 picks a free one) and [web] host\n"
    )
