"""deploy/prometheus: promtool validates the config and rules and runs the rule unit tests."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.helpers import (
    ALERTING_RULES,
    CX_NAME,
    PROMETHEUS,
    RECORDING_RULES,
    WINDOWS,
    WORKER_METRICS,
    alerting_rules,
    load_yaml,
    recording_rule_names,
    run_promtool,
)

RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))


def test_promtool_check_config() -> None:
    out = run_promtool(["check", "config", PROMETHEUS / "prometheus.yml"])
    assert "2 rule files found" in out.stdout


def test_promtool_check_rules() -> None:
    run_promtool(["check", "rules", RECORDING_RULES, ALERTING_RULES])


def test_promtool_rule_unit_tests() -> None:
    assert RULE_TESTS, "no promtool rule tests under deploy/prometheus/tests"
    out = run_promtool(["test", "rules", *RULE_TESTS])
    assert out.stdout.count("SUCCESS") == len(RULE_TESTS), out.stdout


def _rule_tests() -> list[dict[str, Any]]:
    return [t for path in RULE_TESTS for t in load_yaml(path)["tests"]]


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in _rule_tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {r["alert"] for r in alerting_rules()}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a non-firing test"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


def test_recording_rules_are_unit_tested() -> None:
    tested = {
        name
        for test in _rule_tests()
        for case in test.get("promql_expr_test", [])
        for name in CX_NAME.findall(case["expr"])
    }
    recorded = recording_rule_names()
    assert len(tested & recorded) >= 2
    assert tested <= recorded, "promql_expr_test on names that are not recording rules"


def test_alerting_rules_shape() -> None:
    """Each alert waits (`for`), is routed by severity and explains itself."""
    for rule in alerting_rules():
        name = rule["alert"]
        assert name.startswith("Cx"), name
        assert rule.get("for"), f"{name}: no `for`"
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
    expected = {
        "CxNpsDrop",
        "CxCsatDrop",
        "CxCartAbandonmentRise",
        "CxFirstResponseSlowdown",
        "CxSlaBreachHigh",
        "CxConsumerLagHigh",
        "CxNoEvents",
        "CxTopicQuiet",
        "CxWatermarkStalled",
        "CxRejectedRecordsHigh",
        "CxWorkerDown",
        "CxAlertFiring",
    }
    assert expected <= {r["alert"] for r in alerting_rules()}


def test_rules_use_only_exported_metrics_and_windows() -> None:
    """A typo in a metric name or window would make a rule silently never fire."""
    recorded = recording_rule_names()
    rules = load_yaml(RECORDING_RULES)["groups"] + load_yaml(ALERTING_RULES)["groups"]
    for group in rules:
        for rule in group["rules"]:
            expr = rule["expr"]
            unknown = set(CX_NAME.findall(expr)) - WORKER_METRICS - recorded
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"
            for window in _window_literals(expr):
                assert window in WINDOWS, f"{rule.get('alert') or rule.get('record')}: {window}"


def _window_literals(expr: str) -> list[str]:
    return re.findall(r'window\s*=\s*"([^"]*)"', expr)


def test_one_quiet_topic_never_pages() -> None:
    """Only silence on every input topic pages; a per-topic silence is a ticket."""
    rules = {r["alert"]: r for r in alerting_rules()}
    assert rules["CxNoEvents"]["labels"]["severity"] == "page"
    assert "by (topic)" not in rules["CxNoEvents"]["expr"]
    assert rules["CxTopicQuiet"]["labels"]["severity"] == "ticket"
    for name in ("CxNoEvents", "CxTopicQuiet"):
        assert "offset 1d" in rules[name]["expr"], name
