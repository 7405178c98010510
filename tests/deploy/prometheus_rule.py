"""deploy/k8s/monitoring/prometheusrule.yaml, generated from deploy/prometheus's rule files.

The PrometheusRule (prometheus-operator) carries the very groups of
``recording_rules.yml`` and ``alerting_rules.yml``; ``tests/deploy/test_k8s_monitoring.py``
fails when they differ. Regenerate with::

    .venv/bin/python -m tests.deploy.prometheus_rule > deploy/k8s/monitoring/prometheusrule.yaml
"""

from __future__ import annotations

from typing import Any

from tests.deploy.helpers import ALERTING_RULES, RECORDING_RULES, load_yaml, yaml_module

HEADER = """\
# Generated from deploy/prometheus/{recording,alerting}_rules.yml: do not edit here.
#   .venv/bin/python -m tests.deploy.prometheus_rule > deploy/k8s/monitoring/prometheusrule.yaml
# tests/deploy/test_k8s_monitoring.py fails when this file and those differ.
"""


def rule_groups() -> list[Any]:
    """The recording groups, then the alerting groups, as Prometheus loads them."""
    groups: list[Any] = load_yaml(RECORDING_RULES)["groups"] + load_yaml(ALERTING_RULES)["groups"]
    return groups


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "cxpulse",
            "namespace": "cxpulse",
            "labels": {"app.kubernetes.io/name": "cxpulse", "release": "kube-prometheus-stack"},
        },
        "spec": {"groups": rule_groups()},
    }


def render() -> str:
    yaml = yaml_module()

    class Dumper(yaml.SafeDumper):  # type: ignore[misc,name-defined]
        pass

    def text(dumper: Any, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    body: str = yaml.dump(prometheus_rule(), Dumper=Dumper, sort_keys=False, width=100)
    return HEADER + body


if __name__ == "__main__":  # pragma: no cover - the generator
    print(render(), end="")
