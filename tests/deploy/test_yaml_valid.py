"""deploy/: every YAML file parses, and the pieces fit together.

No Docker engine or Kubernetes cluster here, so the compose file and the manifests
are checked for what a typo would break: services, mounts that exist, probes, the
config the workers load (with cxpulse's own settings loader), labels and routes
that must agree across files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cxpulse.streams.settings import load_settings
from tests.deploy.helpers import (
    DEPLOY,
    PROMETHEUS,
    alerting_rules,
    load_yaml,
    load_yaml_all,
)

COMPOSE_DIR = DEPLOY / "compose"
K8S_DIR = DEPLOY / "k8s"
YAML_FILES = sorted(p for ext in ("*.yml", "*.yaml") for p in DEPLOY.rglob(ext))


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    docs = load_yaml_all(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs), path


def test_expected_files_exist() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in YAML_FILES}
    assert {
        "prometheus/prometheus.yml",
        "prometheus/recording_rules.yml",
        "prometheus/alerting_rules.yml",
        "alertmanager/alertmanager.yml",
        "grafana/provisioning/dashboards/cxpulse.yml",
        "grafana/provisioning/datasources/prometheus.yml",
        "compose/docker-compose.yml",
        "k8s/deployment.yaml",
        "k8s/service.yaml",
        "k8s/configmap.yaml",
    } <= names
    assert (COMPOSE_DIR / "Dockerfile").is_file()
    assert (DEPLOY / "README.md").is_file()


# --- docker compose ------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_DIR / "docker-compose.yml")
    return data


def _workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("command", ["worker"])[0] == "worker" and "build" in svc
    }


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"prometheus", "alertmanager", "grafana", "cxpulse-generator"} <= set(services)
    kafka = {
        n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka:")
    }
    assert len(kafka) >= 1
    voters = {s["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] for s in kafka.values()}
    assert len(voters) == 1, "every KRaft node must list the same controller quorum"
    ids = sorted(s["environment"]["KAFKA_NODE_ID"] for s in kafka.values())
    assert len(set(ids)) == len(ids)
    for svc in kafka.values():
        env = svc["environment"]
        assert "controller" in env["KAFKA_PROCESS_ROLES"], "KRaft mode, no ZooKeeper"
        assert "ZOOKEEPER" not in " ".join(env)
    # cxpulse creates internal topics with replication factor 3 on a real cluster
    assert len(kafka) >= 3
    workers = _workers(compose)
    assert 2 <= len(workers) <= 3
    for name, svc in workers.items():
        build = svc["build"]
        dockerfile = (COMPOSE_DIR / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile == (COMPOSE_DIR / "Dockerfile").resolve(), name
        assert svc["environment"]["CXPULSE_CONFIG"] == "/etc/cxpulse/cxpulse.toml", name
        assert "/healthz" in " ".join(svc["healthcheck"]["test"]), name
        assert set(svc["depends_on"]) == set(kafka), name


def test_compose_bind_mounts_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source} does not exist"


def test_compose_prometheus_and_grafana_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert (COMPOSE_DIR / mounts["/etc/prometheus"]).resolve() == PROMETHEUS.resolve()
    # Prometheus scrapes every compose worker by name, on the web port of cxpulse.toml
    prom = load_yaml(PROMETHEUS / "prometheus.yml")
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "cxpulse")
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    port = load_settings(COMPOSE_DIR / "cxpulse.toml", env={}).web_port
    assert targets == {f"{name}:{port}" for name in _workers(compose)}
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    # Grafana: provisioning mounted where Grafana reads it; dashboards where the provider looks
    gmounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert (COMPOSE_DIR / gmounts["/etc/grafana/provisioning"]).resolve() == (
        DEPLOY / "grafana" / "provisioning"
    ).resolve()
    provider = load_yaml(DEPLOY / "grafana/provisioning/dashboards/cxpulse.yml")["providers"][0]
    dash_dir = provider["options"]["path"]
    assert (COMPOSE_DIR / gmounts[dash_dir]).resolve() == (DEPLOY / "grafana/dashboards").resolve()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dash_dir}/cxpulse-wall.json"
    datasource = load_yaml(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    (ds,) = datasource["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"


def test_compose_worker_config_loads() -> None:
    settings = load_settings(COMPOSE_DIR / "cxpulse.toml", env={})
    assert settings.broker.url and "kafka-1" in settings.broker.url
    assert {"15m/1m", "1h/1m", "24h/15m", "7d/1h"} <= {w.label for w in settings.windows}


# --- kubernetes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    """kind -> the one object of that kind under deploy/k8s (Kustomization included)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in load_yaml_all(path):
            assert doc["kind"] not in objects, f"two {doc['kind']} objects"
            objects[doc["kind"]] = doc | {"_file": path.name}
    return objects


def test_k8s_kustomization_lists_every_manifest(k8s: dict[str, dict[str, Any]]) -> None:
    listed = set(k8s["Kustomization"]["resources"])
    files = {o["_file"] for kind, o in k8s.items() if kind != "Kustomization"}
    assert listed == files


def test_k8s_deployment(k8s: dict[str, dict[str, Any]]) -> None:
    deployment = k8s["Deployment"]
    assert deployment["apiVersion"] == "apps/v1"
    pod = deployment["spec"]["template"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["replicas"] >= 2
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 6066
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz", probe
        assert ports.get(get["port"], get["port"]) == 6066, probe
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CXPULSE_CONFIG"] == "/etc/cxpulse/cxpulse.toml"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    config_volume = next(n for n, path in mounts.items() if path == "/etc/cxpulse")
    assert volumes[config_volume]["configMap"]["name"] == k8s["ConfigMap"]["metadata"]["name"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "6066"


def test_k8s_configmap_is_a_valid_cxpulse_config(
    k8s: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    toml = k8s["ConfigMap"]["data"]["cxpulse.toml"]
    path = tmp_path / "cxpulse.toml"
    path.write_text(toml, encoding="utf-8")
    settings = load_settings(path, env={})  # raises ConfigError naming the bad key
    assert settings.web_port == 6066
    assert settings.topics.partitions >= k8s["Deployment"]["spec"]["replicas"], (
        "a worker without partitions never becomes ready"
    )
    assert settings.store.data_dir in {
        m["mountPath"]
        for m in k8s["Deployment"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }


def test_k8s_service_for_scraping(k8s: dict[str, dict[str, Any]]) -> None:
    service = k8s["Service"]
    pod_labels = k8s["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "6066"
    assert annotations["prometheus.io/path"] == "/metrics"
    (port,) = service["spec"]["ports"]
    assert port["port"] == 6066
    namespaces = {
        o["metadata"].get("namespace")
        for k, o in k8s.items()
        if k not in ("Namespace", "Kustomization")
    }
    assert namespaces - {None} == {k8s["Namespace"]["metadata"]["name"]}


# --- alertmanager --------------------------------------------------------------------


def test_alertmanager_routes_every_severity() -> None:
    config = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    receivers = {r["name"] for r in config["receivers"]}
    route = config["route"]
    assert {"alertname", "channel"} <= set(route["group_by"])
    assert route["receiver"] in receivers
    routed: dict[str, str] = {}
    for sub in route["routes"]:
        assert sub["receiver"] in receivers
        for matcher in sub.get("matchers", []):
            m = re.fullmatch(r'\s*severity\s*=\s*"?(\w+)"?\s*', matcher)
            if m:
                routed[m[1]] = sub["receiver"]
    assert routed.get("page") and routed.get("ticket") and routed["page"] != routed["ticket"]
    for rule in alerting_rules():
        assert rule["labels"]["severity"] in routed, rule["alert"]
    # the inhibition pairs CxAlertFiring with the Prometheus-side rules by their labels
    alerts = {r["alert"]: r for r in alerting_rules()}
    inhibit = next(
        i for i in config["inhibit_rules"] if 'alertname = "CxAlertFiring"' in i["source_matchers"]
    )
    targets = re.search(r'=~\s*"([^"]+)"', inhibit["target_matchers"][0])
    assert targets
    for name in targets[1].split("|"):
        assert alerts[name]["labels"].get("alert"), f"{name} needs an `alert` label to inhibit"
    assert set(inhibit["equal"]) == {"alert", "channel"}
