"""Settings: SPEC §5 defaults, TOML, env overrides, and errors that name the key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from cxpulse.streams.settings import (
    METRICS,
    AlertRule,
    BusinessHours,
    ConfigError,
    Settings,
    load_settings,
    settings_or_exit,
)
from cxpulse.streams.windows import parse_window

SPEC_EXAMPLE = """
[broker]
url = "kafka://localhost:9092"
[topics]
survey = "cx.survey.events"
cart = "cx.cart.events"
ticket = "cx.ticket.events"
kpi = "cx.kpi"
alerts = "cx.alerts"
deadletter = "cx.deadletter"
partitions = 4
[windows]
list = ["15m/1m", "1h/1m", "24h/15m", "7d/1h", "30d/1d"]
[time]
allowed_lateness = "120s"
idle_timeout = "60s"
max_clock_skew = "300s"
dedup_horizon = "24h"
[carts]
abandon_after = "30m"
recovery_window = "7d"
[tickets.sla]
urgent = "1h"
high = "4h"
normal = "8h"
low = "24h"
[tickets.business_hours]
timezone = "Europe/Madrid"
hours = { mon = "09:00-18:00", tue = "09:00-18:00", wed = "09:00-18:00", thu = "09:00-18:00", fri = "09:00-15:00" }
holidays = ["2026-12-25"]
[segments]
dimensions = ["channel"]
max_segment_values = 20
[[alerts.rules]]
name = "nps_drop"
metric = "nps"
window = "1h/1m"
baseline = "7d/1h"
direction = "drop"
threshold = 10
min_n = 30
z = 1.96
[emit]
interval = "10s"
[web]
port = 6066
[store]
url = "memory://"
data_dir = "./cxpulse-data"
"""  # noqa: E501  (the SPEC's own line)

H, M = 3_600_000, 60_000


def load(text: str = "", env: dict[str, str] | None = None, *, tmp: Path) -> Settings:
    path = tmp / "cxpulse.toml"
    path.write_text(text)
    return load_settings(path, env or {})


def error(text: str = "", env: dict[str, str] | None = None, *, tmp: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text, env, tmp=tmp)
    return info.value


# ----------------------------------------------------------------------------- defaults


def test_defaults_equal_spec() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.broker.url is None and s.broker.bootstrap_servers is None
    assert (s.topics.survey, s.topics.cart, s.topics.ticket) == (
        "cx.survey.events",
        "cx.cart.events",
        "cx.ticket.events",
    )
    assert (s.topics.kpi, s.topics.alerts, s.topics.deadletter) == (
        "cx.kpi",
        "cx.alerts",
        "cx.deadletter",
    )
    assert s.topics.partitions == 4
    spec_windows = ["15m/1m", "1h/1m", "24h/15m", "7d/1h", "30d/1d"]
    assert s.windows == tuple(parse_window(w) for w in spec_windows)
    assert s.time.allowed_lateness_ms == 120_000
    assert s.time.idle_timeout_ms == 60_000
    assert s.time.max_clock_skew_ms == 300_000
    assert s.time.dedup_horizon_ms == 24 * H
    assert s.carts.abandon_after_ms == 30 * M
    assert s.carts.recovery_window_ms == 7 * 24 * H
    assert dict(s.tickets.sla_ms) == {"urgent": H, "high": 4 * H, "normal": 8 * H, "low": 24 * H}
    assert s.tickets.business_hours is None
    assert s.segments.dimensions == ("channel",)
    assert s.segments.max_segment_values == 20
    assert s.emit_interval_ms == 10_000
    assert s.web_port == 6066
    assert (s.store.url, s.store.data_dir) == ("memory://", "./cxpulse-data")
    assert (s.worker.app_id, s.worker.log_level) == ("cxpulse", "warning")
    assert s.worker.commit_interval_ms == 1_000


def test_default_alert_rules_are_spec_4_3() -> None:
    rules = {r.name: r for r in load_settings(env={}).alerts}
    assert list(rules) == [
        "nps_drop",
        "csat_drop",
        "cart_abandonment_rise",
        "first_response_slowdown",
    ]
    table = {
        "nps_drop": ("nps", "1h/1m", "7d/1h", "drop", 10.0, False, 30, 1.96),
        "csat_drop": ("csat", "1h/1m", "7d/1h", "drop", 0.10, False, 30, 1.96),
        "cart_abandonment_rise": (
            "cart_abandonment",
            "15m/1m",
            "24h/15m",
            "rise",
            0.10,
            False,
            50,
            1.96,
        ),
        "first_response_slowdown": (
            "ticket_first_response_seconds",
            "1h/1m",
            "7d/1h",
            "rise",
            0.5,
            True,
            20,
            0.0,
        ),
    }
    for name, (metric, window, baseline, direction, threshold, relative, min_n, z) in table.items():
        rule = rules[name]
        assert (rule.metric, rule.window, rule.baseline) == (
            metric,
            parse_window(window),
            parse_window(baseline),
        )
        assert (rule.direction, rule.threshold, rule.relative) == (direction, threshold, relative)
        assert (rule.min_n, rule.z) == (min_n, z)
    assert rules["first_response_slowdown"].stat == "p90"


def test_settings_are_frozen_and_hashable() -> None:
    s = load_settings(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.web_port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.tickets.sla_ms["urgent"] = 1  # type: ignore[index]
    assert hash(s) == hash(load_settings(env={}))


# ----------------------------------------------------------------------------- TOML


def test_spec_example_file(tmp_path: Path) -> None:
    s = load(SPEC_EXAMPLE, tmp=tmp_path)
    assert s.broker.url == "kafka://localhost:9092"
    assert s.broker.bootstrap_servers == "localhost:9092"
    assert [r.name for r in s.alerts] == ["nps_drop"]  # given rules replace the defaults
    assert s.alerts[0] == Settings().alerts[0]
    hours = s.tickets.business_hours
    assert hours == BusinessHours(
        "Europe/Madrid",
        (*((d, 9 * 60, 18 * 60) for d in range(4)), (4, 9 * 60, 15 * 60)),
        (dt.date(2026, 12, 25),),
    )
    assert hours.zone.key == "Europe/Madrid"
    without = dataclasses.replace(s, broker=Settings().broker, alerts=Settings().alerts)
    assert without == dataclasses.replace(Settings(), tickets=s.tickets)


def test_toml_values(tmp_path: Path) -> None:
    s = load(
        """
        [broker]
        url = "kafka://k1:9092,k2:9093"
        [topics]
        kpi = "team.kpi"
        partitions = 12
        [windows]
        list = ["5m/1m", "1h/5m"]
        [time]
        allowed_lateness = "0s"
        idle_timeout = "500ms"
        [carts]
        abandon_after = "45m"
        [tickets.sla]
        urgent = "30m"
        [segments]
        dimensions = ["channel", "region"]
        max_segment_values = 5
        [[alerts.rules]]
        name = "slow"
        metric = "ticket_first_response_seconds_business"
        window = "5m/1m"
        baseline = "1h/5m"
        direction = "rise"
        threshold = "25%"
        stat = "p90"
        [emit]
        interval = "2s"
        [web]
        port = 0
        [store]
        url = "rocksdb://"
        data_dir = "/var/lib/cxpulse"
        [worker]
        app_id = "cxpulse-eu"
        log_level = "INFO"
        commit_interval = "5s"
        """,
        tmp=tmp_path,
    )
    assert s.broker.bootstrap_servers == "k1:9092,k2:9093"
    assert (s.topics.kpi, s.topics.partitions, s.topics.survey) == (
        "team.kpi",
        12,
        "cx.survey.events",
    )
    assert s.windows == (parse_window("5m/1m"), parse_window("1h/5m"))
    assert (s.time.allowed_lateness_ms, s.time.idle_timeout_ms) == (0, 500)
    assert s.time.max_clock_skew_ms == 300_000
    assert s.carts.abandon_after_ms == 45 * M
    assert s.tickets.sla_ms["urgent"] == 30 * M and s.tickets.sla_ms["low"] == 24 * H
    assert s.segments == type(s.segments)(("channel", "region"), 5)
    assert s.alerts == (
        AlertRule(
            "slow",
            "ticket_first_response_seconds_business",
            parse_window("5m/1m"),
            parse_window("1h/5m"),
            "rise",
            0.25,
            relative=True,
            stat="p90",
        ),
    )
    assert (s.emit_interval_ms, s.web_port) == (2000, 0)
    assert (s.store.url, s.store.data_dir) == ("rocksdb://", "/var/lib/cxpulse")
    assert (s.worker.app_id, s.worker.log_level) == ("cxpulse-eu", "info")
    assert s.worker.commit_interval_ms == 5_000


def test_default_rules_follow_the_windows(tmp_path: Path) -> None:
    s = load('[windows]\nlist = ["1h/1m", "7d/1h"]', tmp=tmp_path)
    assert [r.name for r in s.alerts] == ["nps_drop", "csat_drop", "first_response_slowdown"]


def test_empty_rule_list_disables_alerts(tmp_path: Path) -> None:
    assert load("[alerts]\nrules = []", tmp=tmp_path).alerts == ()


# ----------------------------------------------------------------------------- env


@pytest.mark.parametrize(
    ("var", "value", "read", "expected"),
    [
        ("CXPULSE_TIME_ALLOWED_LATENESS", "90s", lambda s: s.time.allowed_lateness_ms, 90_000),
        ("CXPULSE_TOPICS_PARTITIONS", "6", lambda s: s.topics.partitions, 6),
        ("CXPULSE_TOPICS_KPI", "other.kpi", lambda s: s.topics.kpi, "other.kpi"),
        ("CXPULSE_TICKETS_SLA_URGENT", "30m", lambda s: s.tickets.sla_ms["urgent"], 30 * M),
        ("CXPULSE_WEB_PORT", "0", lambda s: s.web_port, 0),
        ("CXPULSE_BROKER_URL", "kafka://h:9092", lambda s: s.broker.url, "kafka://h:9092"),
        ("CXPULSE_BROKER_URL", "", lambda s: s.broker.url, None),
        ("CXPULSE_WORKER_APP_ID", "x", lambda s: s.worker.app_id, "x"),
        ("CXPULSE_EMIT_INTERVAL", "2s", lambda s: s.emit_interval_ms, 2000),
        ("CXPULSE_STORE_URL", "rocksdb://", lambda s: s.store.url, "rocksdb://"),
        ("CXPULSE_SEGMENTS_MAX_SEGMENT_VALUES", "3", lambda s: s.segments.max_segment_values, 3),
        ("CXPULSE_CARTS_RECOVERY_WINDOW", "1d", lambda s: s.carts.recovery_window_ms, 24 * H),
        ("CXPULSE_TICKETS_FORGET_AFTER", "2d", lambda s: s.tickets.forget_after_ms, 48 * H),
        ("CXPULSE_WINDOWS_LIST", '["1h/1m"]', lambda s: [w.name for w in s.windows], ["1h/1m"]),
        ("CXPULSE_WINDOWS_LIST", "['1h/1m', '7d/1h']", lambda s: len(s.windows), 2),  # TOML
        ("CXPULSE_SEGMENTS_DIMENSIONS", "[]", lambda s: s.segments.dimensions, ()),
    ],
)
def test_env_overrides_win_over_toml(
    var: str, value: str, read: Callable[[Settings], object], expected: object, tmp_path: Path
) -> None:
    toml = """
    [broker]
    url = "kafka://file:9092"
    [topics]
    partitions = 2
    kpi = "file.kpi"
    [time]
    allowed_lateness = "5s"
    [tickets.sla]
    urgent = "2h"
    [web]
    port = 7000
    [worker]
    app_id = "from-file"
    """
    assert read(load(toml, {var: value}, tmp=tmp_path)) == expected


def test_env_rules_as_json(tmp_path: Path) -> None:
    rule = (
        '[{"name": "r", "metric": "csat", "window": "1h/1m", "baseline": "7d/1h",'
        ' "direction": "drop", "threshold": 0.2, "min_n": 5, "z": 2}]'
    )
    (only,) = load(env={"CXPULSE_ALERTS_RULES": rule}, tmp=tmp_path).alerts
    assert (only.name, only.threshold, only.min_n, only.z, only.relative) == (
        "r",
        0.2,
        5,
        2.0,
        False,
    )


@pytest.mark.parametrize(
    ("metric", "stat"),
    [
        ("overall_recommend_r", None),
        ("overall_switch_r", None),
        ("overall_repurchase_r", None),
        ("average_order_value", None),
        ("average_order_value", "revenue"),
    ],
)
def test_rules_may_watch_the_correlations_and_the_average_order_value(
    metric: str, stat: str | None, tmp_path: Path
) -> None:
    """Settings know every metric of the catalogue, the new ones included."""
    fields = {"name": "r", "metric": metric, "window": "1h/1m", "baseline": "7d/1h"}
    fields |= {"direction": "rise", "threshold": "20%", "min_n": 10}
    if stat is not None:
        fields["stat"] = stat
    (only,) = load(env={"CXPULSE_ALERTS_RULES": json.dumps([fields])}, tmp=tmp_path).alerts
    assert (only.metric, only.stat, only.relative) == (metric, stat, True)
    assert metric in METRICS
    typo = json.dumps([{**fields, "metric": metric + "s"}])
    assert "alerts.rules[0].metric" in str(error(env={"CXPULSE_ALERTS_RULES": typo}, tmp=tmp_path))


def test_env_business_hours_alone_and_per_day(tmp_path: Path) -> None:
    env = {
        "CXPULSE_TICKETS_BUSINESS_HOURS_TIMEZONE": "America/New_York",
        "CXPULSE_TICKETS_BUSINESS_HOURS_HOURS": '{"mon": "08:00-12:00", "sat": "10:00-14:00"}',
        "CXPULSE_TICKETS_BUSINESS_HOURS_HOURS_MON": "09:00-12:00, 13:00-17:00",
        "CXPULSE_TICKETS_BUSINESS_HOURS_HOLIDAYS": '["2026-07-04"]',
    }
    hours = load(env=env, tmp=tmp_path).tickets.business_hours
    assert hours == BusinessHours(
        "America/New_York",
        ((0, 540, 720), (0, 780, 1020), (5, 600, 840)),
        (dt.date(2026, 7, 4),),
    )


def test_config_path_from_env(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[web]\nport = 1234\n")
    assert load_settings(env={"CXPULSE_CONFIG": str(path)}).web_port == 1234


def test_unknown_env_variable_is_an_error(tmp_path: Path) -> None:
    err = error(env={"CXPULSE_TIME_LATENESS": "90s"}, tmp=tmp_path)
    assert err.key == "CXPULSE_TIME_LATENESS"
    assert "CXPULSE_TIME_ALLOWED_LATENESS" in err.message
    assert error(env={"CXPULSE_NOPE": "1"}, tmp=tmp_path).key == "CXPULSE_NOPE"


def test_env_errors_name_the_key_and_the_variable(tmp_path: Path) -> None:
    err = error(env={"CXPULSE_TOPICS_PARTITIONS": "six"}, tmp=tmp_path)
    assert err.key == "topics.partitions"
    assert "CXPULSE_TOPICS_PARTITIONS" in str(err)
    err = error(env={"CXPULSE_WINDOWS_LIST": '["1h/1m", "2x/1m"]'}, tmp=tmp_path)
    assert err.key == "windows.list[1]" and "CXPULSE_WINDOWS_LIST" in err.message


def test_other_env_variables_are_ignored(tmp_path: Path) -> None:
    assert (
        load(env={"PATH": "/bin", "CXPULSEX": "1", "BROKER_URL": "x"}, tmp=tmp_path) == Settings()
    )


# ----------------------------------------------------------------------------- errors

RULE = """
[windows]
list = ["1h/1m", "7d/1h"]
[[alerts.rules]]
name = "a"
metric = "nps"
window = "1h/1m"
baseline = "7d/1h"
direction = "drop"
threshold = 10
[[alerts.rules]]
name = "b"
metric = "csat"
window = "1h/1m"
baseline = "7d/1h"
direction = "drop"
threshold = 0.1
"""


def rule_with(**changes: str) -> str:
    """RULE with lines of the second rule replaced (key = TOML value) or dropped (value '')."""
    head, second = RULE.split('name = "b"')
    lines = ['name = "b"', *second.strip().splitlines()]
    out = []
    for line in lines:
        key = line.split(" = ")[0]
        if key in changes:
            if changes[key]:
                out.append(f"{key} = {changes.pop(key)}")
            else:
                changes.pop(key)
        else:
            out.append(line)
    out += [f"{k} = {v}" for k, v in changes.items()]
    return head + "\n".join(out) + "\n"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[time]\nallowed_lateness = "2 minutes"', "time.allowed_lateness"),
        ("[time]\nallowed_lateness = 120", "time.allowed_lateness"),
        ('[time]\nidle_timeout = "0s"', "time.idle_timeout"),
        ('[time]\ndedup_horizon = "-1h"', "time.dedup_horizon"),
        ('[carts]\nabandon_after = "0m"', "carts.abandon_after"),
        ('[tickets.sla]\nhigh = "0h"', "tickets.sla.high"),
        ('[emit]\ninterval = "0s"', "emit.interval"),
        ('[windows]\nlist = ["1h/7m"]', "windows.list[0]"),
        ('[windows]\nlist = ["1h/1m", "hour"]', "windows.list[1]"),
        ('[windows]\nlist = ["1h/1m", "60m/1m"]', "windows.list[1]"),
        ("[windows]\nlist = []", "windows.list"),
        ('[windows]\nlist = "1h/1m"', "windows.list"),
        ("[topics]\npartitions = 0", "topics.partitions"),
        ('[topics]\npartitions = "4"', "topics.partitions"),
        ('[topics]\nkpi = "has space"', "topics.kpi"),
        ('[topics]\nalerts = "cx.kpi"', "topics.alerts"),
        ("[web]\nport = 65536", "web.port"),
        ("[web]\nport = -1", "web.port"),
        ("[segments]\nmax_segment_values = 0", "segments.max_segment_values"),
        ('[segments]\ndimensions = ["channel", "Bad-Name"]', "segments.dimensions[1]"),
        ('[segments]\ndimensions = ["window"]', "segments.dimensions[0]"),
        ('[store]\nurl = "redis://"', "store.url"),
        ('[store]\nurl = "memory"', "store.url"),
        ('[broker]\nurl = "localhost:9092"', "broker.url"),
        ('[broker]\nurl = "kafka://h:99999"', "broker.url"),
        ('[broker]\nurl = "kafka://h:9092,"', "broker.url"),
        ('[worker]\napp_id = "my app"', "worker.app_id"),
        ('[worker]\nlog_level = "loud"', "worker.log_level"),
        ('[worker]\ncommit_interval = "0s"', "worker.commit_interval"),
        ("time = 5", "time"),
        ('[time]\nlateness = "90s"', "time.lateness"),
        ("[bogus]\nx = 1", "bogus"),
        ("web_port = 1", "web_port"),
        ('[tickets]\nsla = { urgent = "1h", critical = "5m" }', "tickets.sla.critical"),
        ("[alerts]\nrules = 3", "alerts.rules"),
        ("[alerts]\nrules = [3]", "alerts.rules[0]"),
        (rule_with(threshold='"lots"'), "alerts.rules[1].threshold"),
        (rule_with(threshold="-1"), "alerts.rules[1].threshold"),
        (rule_with(threshold="true"), "alerts.rules[1].threshold"),
        (rule_with(direction='"down"'), "alerts.rules[1].direction"),
        (rule_with(window='"1h"'), "alerts.rules[1].window"),
        (rule_with(baseline='"30d/1d"'), "alerts.rules[1].baseline"),
        (rule_with(metric='"happiness"'), "alerts.rules[1].metric"),
        (rule_with(name=""), "alerts.rules[1].name"),
        (rule_with(name='"a"'), "alerts.rules[1].name"),
        (rule_with(min_n="0"), "alerts.rules[1].min_n"),
        (rule_with(z='"high"'), "alerts.rules[1].z"),
        (rule_with(zz="1"), "alerts.rules[1].zz"),
    ],
)
def test_bad_value_names_the_key(toml: str, key: str, tmp_path: Path) -> None:
    assert error(toml, tmp=tmp_path).key == key


BH = '[tickets.business_hours]\ntimezone = "Europe/Madrid"\n'


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        (
            BH.replace("Europe/Madrid", "Mars/Olympus") + 'hours = {mon = "09:00-18:00"}',
            "tickets.business_hours.timezone",
        ),
        (
            BH.replace("Europe/Madrid", "Europe") + 'hours = {mon = "09:00-18:00"}',
            "tickets.business_hours.timezone",
        ),
        (
            '[tickets.business_hours]\nhours = {mon = "09:00-18:00"}',
            "tickets.business_hours.timezone",
        ),
        (BH, "tickets.business_hours.hours"),
        (BH + "hours = {}", "tickets.business_hours.hours"),
        (BH + 'hours = "09:00-18:00"', "tickets.business_hours.hours"),
        (BH + 'hours = {mon = "9-18"}', "tickets.business_hours.hours.mon"),
        (BH + 'hours = {mon = "18:00-09:00"}', "tickets.business_hours.hours.mon"),
        (BH + 'hours = {tue = "09:00-25:00"}', "tickets.business_hours.hours.tue"),
        (BH + 'hours = {tue = "09:60-10:00"}', "tickets.business_hours.hours.tue"),
        (BH + 'hours = {wed = ["09:00-12:00", "11:00-15:00"]}', "tickets.business_hours.hours.wed"),
        (BH + 'hours = {wed = ["09:00-12:00", 13]}', "tickets.business_hours.hours.wed[1]"),
        (BH + 'hours = {monday = "09:00-18:00"}', "tickets.business_hours.hours.monday"),
        (
            BH + 'hours = {mon = "09:00-18:00"}\nholidays = ["2026-02-30"]',
            "tickets.business_hours.holidays[0]",
        ),
        (
            BH + 'hours = {mon = "09:00-18:00"}\nholidays = ["2026-01-01", "25/12/2026"]',
            "tickets.business_hours.holidays[1]",
        ),
        (
            BH + 'hours = {mon = "09:00-18:00"}\nholidays = "2026-01-01"',
            "tickets.business_hours.holidays",
        ),
        (BH + 'hours = {mon = "09:00-18:00"}\nweekends = true', "tickets.business_hours.weekends"),
    ],
)
def test_bad_business_hours_name_the_key(toml: str, key: str, tmp_path: Path) -> None:
    assert error(toml, tmp=tmp_path).key == key


def test_business_hours_forms(tmp_path: Path) -> None:
    hours = load(
        BH
        + """
        hours = { fri = "14:00-24:00", mon = ["13:00-18:00", "08:00-12:00"], tue = "08:00-12:00,12:00-13:00", sun = [] }
        holidays = [2026-12-25, "2026-01-01", "2026-12-25"]
        """,  # noqa: E501
        tmp=tmp_path,
    ).tickets.business_hours
    assert hours is not None
    assert hours.hours == (
        (0, 480, 720),
        (0, 780, 1080),
        (1, 480, 720),
        (1, 720, 780),
        (4, 840, 1440),
    )
    assert hours.holidays == (dt.date(2026, 1, 1), dt.date(2026, 12, 25))


def test_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "absent.toml", env={})
    assert info.value.key == "config"
    assert error("[web\nport = 1", tmp=tmp_path).key == "config"


def test_error_text_is_key_then_message() -> None:
    err = ConfigError("time.allowed_lateness", "bad")
    assert str(err) == "time.allowed_lateness: bad"
    assert (err.key, err.message) == ("time.allowed_lateness", "bad")


def test_settings_or_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[time]\nallowed_lateness = "soon"\n')
    with pytest.raises(SystemExit) as info:
        settings_or_exit(path, env={})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cxpulse: bad config: time.allowed_lateness: ")
    assert settings_or_exit(None, env={}) == Settings()
