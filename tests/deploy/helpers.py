"""Shared helpers for the deploy/ checks: paths, promtool, YAML, the worker's metric names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RECORDING_RULES = PROMETHEUS / "recording_rules.yml"
ALERTING_RULES = PROMETHEUS / "alerting_rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "cxpulse-wall.json"

# SPEC §4.2: what a worker exports on GET /metrics.
KPI_GAUGES = frozenset(
    {
        "cx_nps_score",
        "cx_nps_margin_of_error",
        "cx_nps_responses",
        "cx_csat_ratio",
        "cx_csat_mean_score",
        "cx_ces_mean_score",
        "cx_ces_easy_ratio",
        "cx_switch_intent_ratio",
        "cx_repurchase_intent_ratio",
        "cx_survey_response_ratio",
        "cx_cart_abandonment_ratio",
        "cx_checkout_abandonment_ratio",
        "cx_carts_abandoned",
        "cx_carts_converted",
        "cx_cart_abandoned_value",
        "cx_carts_recovered",
        "cx_ticket_sla_breach_ratio",
        "cx_ticket_business_sla_breach_ratio",
        "cx_ticket_reopen_ratio",
        "cx_ticket_complaints",
        "cx_tickets_created",
        "cx_average_order_value",
        "cx_experience_correlation",
    }
    | {
        # one gauge per duration, its stats under the label stat="p50|p90|mean|max"
        f"cx_ticket_{business}{what}_seconds"
        for what in ("first_response", "first_resolution", "full_resolution")
        for business in ("", "business_")
    }
    | {  # the customer family (SPEC §3.4)
        "cx_mrr",
        "cx_customers_active",
        "cx_customer_churn_ratio",
        "cx_revenue_churn_ratio",
        "cx_net_revenue_retention_ratio",
        "cx_referral_ratio",
        "cx_lead_conversion_ratio",
        "cx_cac",
        "cx_clv",
        "cx_ltv_cac_ratio",
    }
)
#: the label values of ``stat`` on the duration gauges
DURATION_STATS = frozenset({"p50", "p90", "mean", "max"})
OPEN_GAUGES = frozenset({"cx_carts_open", "cx_tickets_open"})
HEALTH_METRICS = frozenset(
    {
        "cx_events_total",
        "cx_watermark_timestamp_seconds",
        "cx_consumer_lag",
        "cx_alert_firing",
        "cx_kpi_window_end_timestamp_seconds",
    }
)
#: the build of a worker (prometheus_client's Info("cx_build") exposes it as this gauge)
BUILD_METRICS = frozenset({"cx_build_info"})
WORKER_METRICS = KPI_GAUGES | OPEN_GAUGES | HEALTH_METRICS | BUILD_METRICS
# Added by Prometheus to every scrape target.
SCRAPE_METRICS = frozenset({"up"})
WINDOWS = frozenset({"15m/1m", "1h/1m", "24h/15m", "7d/1h", "30d/1d"})

# A cxpulse metric or recording-rule name inside PromQL (also inside strings such as
# {__name__=~"cx_a|cx_b"}); not preceded by a name character, so a topic label value
# such as "cx.cart.events" or a label like "xcx_a" does not count.
CX_NAME = re.compile(r"(?<![A-Za-z0-9_:.])cx[_:][A-Za-z0-9_:]*")


def promtool() -> str:
    """The promtool binary. Missing is a failure (make test installs it), unless
    SKIP_PROMTOOL=1 explicitly opts out of the promtool checks."""
    if os.environ.get("SKIP_PROMTOOL") == "1":
        pytest.skip("SKIP_PROMTOOL=1")
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not on PATH: `make test` installs it (Debian package "
            "`prometheus`); set SKIP_PROMTOOL=1 to skip these checks on purpose"
        )
    return path


def run_promtool(args: Sequence[str | os.PathLike[str]]) -> subprocess.CompletedProcess[str]:
    """Run promtool; a non-zero exit fails the test with promtool's output."""
    result = subprocess.run(
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"promtool {' '.join(map(str, args))} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def yaml_module() -> Any:
    """PyYAML, which these checks need; its absence is a failure with the fix, not a skip."""
    try:
        import yaml
    except ImportError:  # pragma: no cover - depends on the environment
        pytest.fail("PyYAML is not installed in the venv: add `pyyaml` to the dev extras")
    return yaml


def load_yaml(path: Path) -> Any:
    return yaml_module().safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml_module().safe_load_all(path.read_text(encoding="utf-8")) if doc]


def recording_rule_names() -> set[str]:
    rules = load_yaml(RECORDING_RULES)
    return {r["record"] for group in rules["groups"] for r in group["rules"]}


def alerting_rules() -> list[dict[str, Any]]:
    rules = load_yaml(ALERTING_RULES)
    return [r for group in rules["groups"] for r in group["rules"] if "alert" in r]
