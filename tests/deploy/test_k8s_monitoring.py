"""deploy/k8s/monitoring: the prometheus-operator objects agree with the rest of deploy/.

The PrometheusRule holds exactly the groups of deploy/prometheus's rule files (it is
generated from them: tests/deploy/prometheus_rule.py), and the ServiceMonitor scrapes
the worker Service's pods under the job name the rules use.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.helpers import DEPLOY, load_yaml, load_yaml_all, run_promtool
from tests.deploy.prometheus_rule import render, rule_groups

MONITORING = DEPLOY / "k8s" / "monitoring"


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(MONITORING.glob("*.yaml")):
        for doc in load_yaml_all(path):
            assert doc["kind"] not in found, doc["kind"]
            found[doc["kind"]] = doc | {"_file": path.name}
    return found


def test_the_kustomization_lists_both_objects(objects: dict[str, dict[str, Any]]) -> None:
    listed = set(objects["Kustomization"]["resources"])
    assert listed == {"servicemonitor.yaml", "prometheusrule.yaml"}
    assert {o["_file"] for k, o in objects.items() if k != "Kustomization"} == listed


def test_the_prometheus_rule_is_the_rule_files(objects: dict[str, dict[str, Any]]) -> None:
    rule = objects["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == rule_groups(), (
        "regenerate: .venv/bin/python -m tests.deploy.prometheus_rule"
        " > deploy/k8s/monitoring/prometheusrule.yaml"
    )
    assert (MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8") == render()


def test_promtool_accepts_the_prometheus_rule_groups(
    objects: dict[str, dict[str, Any]], tmp_path: Any
) -> None:
    path = tmp_path / "groups.yml"
    path.write_text(render().split("spec:\n", 1)[1].replace("\n  ", "\n").lstrip())
    out = run_promtool(["check", "rules", path])
    assert "SUCCESS" in out.stdout


def test_the_service_monitor_scrapes_the_worker_pods_as_job_cxpulse(
    objects: dict[str, dict[str, Any]],
) -> None:
    monitor = objects["ServiceMonitor"]
    service = load_yaml(DEPLOY / "k8s" / "service.yaml")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    ports = {p["name"] for p in service["spec"]["ports"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in ports and endpoint["path"] == "/metrics"
    job = labels[monitor["spec"]["jobLabel"]]
    rules = (DEPLOY / "prometheus" / "alerting_rules.yml").read_text()
    rules += (DEPLOY / "prometheus" / "recording_rules.yml").read_text()
    assert set(re.findall(r'job="([^"]+)"', rules)) == {job}
    assert service["spec"]["clusterIP"] == "None", "one endpoint per pod"
    assert monitor["metadata"]["labels"] == objects["PrometheusRule"]["metadata"]["labels"]
