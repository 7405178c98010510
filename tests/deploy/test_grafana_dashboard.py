"""deploy/grafana: the TV wall dashboard's structure, and every PromQL query in it.

Validated by hand (no JSON Schema package in the venv): the dashboard keys Grafana 10
needs, panel ids/types/gridPos/targets, the template variables; then every query is
parsed by promtool (as a recording rule) and may name only metrics a worker exports
(SPEC §4.2), `up`, or recording rules of deploy/prometheus/recording_rules.yml.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helpers import (
    CX_NAME,
    DASHBOARD,
    DURATION_STATS,
    HEALTH_METRICS,
    KPI_GAUGES,
    OPEN_GAUGES,
    ROOT,
    SCRAPE_METRICS,
    WINDOWS,
    WORKER_METRICS,
    recording_rule_names,
    run_promtool,
)

KNOWN_PANEL_TYPES = {
    "stat",
    "timeseries",
    "bargauge",
    "gauge",
    "table",
    "text",
    "row",
    "state-timeline",
    "piechart",
    "barchart",
    "alertlist",
}
GRID_COLUMNS = 24
# Values for Grafana's built-in interval variables when checking the PromQL.
BUILTIN_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1d"}
VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.*),)?\s*(?P<label>\w+)\s*\)\s*$")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def _default(var: dict[str, Any]) -> str:
    value = var["current"].get("value")
    assert isinstance(value, str) and value, f"variable {var['name']} has no default value"
    return value


def _queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every query: panel targets, annotations, variable queries."""
    found: list[tuple[str, str]] = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                found.append((f"panel {panel['id']} {target['refId']}", target["expr"]))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            found.append((f"annotation {annotation['name']!r}", annotation["expr"]))
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = LABEL_VALUES.match(query)
        assert match, f"variable {var['name']}: unsupported query {query!r}"
        if match["selector"]:
            # label_values(selector, label) lists the label's values on these series
            found.append(
                (f"variable {var['name']}", f"count by ({match['label']}) ({match['selector']})")
            )
    return found


def _substitute(expr: str, dashboard: dict[str, Any]) -> str:
    variables = _variables(dashboard)

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in BUILTIN_VARS:
            return BUILTIN_VARS[name]
        assert name in variables, f"unknown variable ${name} in {expr!r}"
        return _default(variables[name])

    return VAR.sub(value, expr)


# --- structure -----------------------------------------------------------------------


def test_top_level(dashboard: dict[str, Any]) -> None:
    for key in ("title", "uid", "panels", "schemaVersion", "templating", "time", "refresh"):
        assert key in dashboard, key
    assert dashboard["uid"] == "cxpulse-wall"
    assert dashboard["schemaVersion"] in (38, 39), "Grafana 10.x schema"
    assert isinstance(dashboard["panels"], list) and dashboard["panels"]
    assert dashboard["time"]["from"] == "now-24h"


def test_template_variables(dashboard: dict[str, Any]) -> None:
    variables = _variables(dashboard)
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    channel = variables["channel"]
    assert channel["type"] == "query" and _default(channel) == "all"
    assert not channel.get("includeAll"), '"all" is a real channel label value'
    window = variables["window"]
    options = [o["value"] for o in window["options"]]
    assert _default(window) == "1h/1m" and set(options) == {"1h/1m", "15m/1m"}
    assert window["query"].split(",") == options


def test_panels(dashboard: dict[str, Any]) -> None:
    ids: list[int] = []
    for panel in _panels(dashboard):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        assert isinstance(panel.get("id"), int), where
        ids.append(panel["id"])
        assert panel.get("type") in KNOWN_PANEL_TYPES, where
        assert panel.get("title"), where
        grid = panel["gridPos"]
        for key in ("x", "y", "w", "h"):
            assert isinstance(grid.get(key), int) and grid[key] >= 0, f"{where}: gridPos.{key}"
        assert grid["w"] >= 1 and grid["h"] >= 1, where
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, f"{where}: wider than {GRID_COLUMNS}"
        if panel["type"] in ("row", "text"):
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        targets = panel.get("targets")
        assert targets, f"{where}: no targets"
        refs = [t["refId"] for t in targets]
        assert len(refs) == len(set(refs)), f"{where}: duplicate refId"
        for target in targets:
            assert target.get("datasource") == panel["datasource"], f"{where}: target datasource"
            assert target.get("expr"), f"{where}: empty expr"
        thresholds = panel["fieldConfig"]["defaults"].get("thresholds")
        if thresholds:
            steps = thresholds["steps"]
            assert steps[0]["value"] is None, f"{where}: first threshold step must be the base"
            values = [s["value"] for s in steps[1:]]
            assert values == sorted(values), f"{where}: thresholds not ascending"
    assert len(ids) == len(set(ids)), "duplicate panel ids"


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                other = taken.setdefault((x, y), panel["id"])
                assert other == panel["id"], f"panels {other} and {panel['id']} overlap"


def test_wall_content(dashboard: dict[str, Any]) -> None:
    """The tiles the wall promises: six KPI stats on $channel/$window, the "as of" time
    of $window, trends, alerts."""
    stats = {p["title"]: p for p in _panels(dashboard) if p["type"] == "stat"}
    for title in ("NPS", "CSAT", "CES", "Cart abandonment", "First response p90", "SLA breaches"):
        panel = stats[title]
        expr = panel["targets"][0]["expr"]
        assert 'channel="$channel"' in expr and 'window="$window"' in expr, title
        assert len(panel["fieldConfig"]["defaults"]["thresholds"]["steps"]) >= 3, title
        assert panel["options"]["colorMode"] == "background", title
    for title in ("Open carts", "Open tickets", "Firing alerts", "As of"):
        assert title in stats, title
    as_of = stats["As of"]
    assert "cx:kpi_window_end_timestamp_seconds:min" in as_of["targets"][0]["expr"]
    assert 'window="$window"' in as_of["targets"][0]["expr"]
    assert as_of["fieldConfig"]["defaults"]["unit"].startswith("dateTime"), "a time, not a number"
    assert "cx_alert_firing" in stats["Firing alerts"]["targets"][0]["expr"] or (
        "cx:alert_firing" in stats["Firing alerts"]["targets"][0]["expr"]
    )
    types = [p["type"] for p in _panels(dashboard)]
    assert types.count("timeseries") >= 6
    assert "bargauge" in types


# --- queries -------------------------------------------------------------------------


def test_every_query_parses(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    queries = _queries(dashboard)
    assert len(queries) >= 20
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _substitute(expr, dashboard)}
        for i, (_, expr) in enumerate(queries)
    ]
    for rule, (where, _) in zip(rules, queries, strict=True):
        assert "$" not in rule["expr"], f"{where}: unsubstituted variable in {rule['expr']!r}"
    path = tmp_path / "dashboard_queries.yml"
    # JSON is YAML: promtool reads this as a rule file
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run_promtool(["check", "rules", path])
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout, out.stdout


def test_queries_name_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    known = WORKER_METRICS | SCRAPE_METRICS | recording_rule_names()
    for where, expr in _queries(dashboard):
        names = set(CX_NAME.findall(expr)) | set(re.findall(r"\bup\b(?=\s*[{)\s])", expr))
        assert names, f"{where}: references no cxpulse metric: {expr!r}"
        assert names <= known, f"{where}: unknown metrics {sorted(names - known)}"
        for window in re.findall(r'window\s*=\s*"([^"$]*)"', expr):
            assert window in WINDOWS, f"{where}: unknown window {window!r}"
        assert "quantile" not in expr, f"{where}: the duration gauges have a stat label"
        for stat in re.findall(r'stat\s*=\s*"([^"]*)"', expr):
            assert stat in DURATION_STATS, f"{where}: unexported stat {stat!r}"


def test_spec_metric_list_matches_the_worker() -> None:
    """The list these checks trust is what the worker really exports (agents/)."""
    from cxpulse.agents.publish.gauges import GAUGES
    from cxpulse.streams.families.cart.family import OPEN_GAUGE as CARTS_OPEN
    from cxpulse.streams.families.ticket.family import OPEN_GAUGE as TICKETS_OPEN

    exported = {g.name for gauges in GAUGES.values() for g in gauges}
    exported |= {CARTS_OPEN, TICKETS_OPEN}
    assert KPI_GAUGES | OPEN_GAUGES <= exported, sorted(KPI_GAUGES | OPEN_GAUGES - exported)
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "agents").rglob("*.py"))
    for name in HEALTH_METRICS:
        assert f'"{name}"' in source, f"{name} is not declared under agents/"
