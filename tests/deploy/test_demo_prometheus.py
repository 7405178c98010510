"""The Prometheus server ``cxpulse demo`` starts when the binary is installed.

The configuration is a pure function, checked here by reading it back and by
``promtool check config`` (which also loads the project's rule files it names);
one cheap run of the real server shows it comes up with the rules and goes away
with its files.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import yaml

from cxpulse.agents.tools.demo_prometheus import (
    demo_prometheus,
    project_rule_files,
    prometheus_binary,
    prometheus_config,
)
from tests.deploy.helpers import ALERTING_RULES, RECORDING_RULES, run_promtool


def test_the_config_scrapes_the_worker_and_loads_the_given_rules() -> None:
    rules = [Path("/x/recording_rules.yml"), Path("/x/alerting_rules.yml")]
    config = yaml.safe_load(prometheus_config(6123, rules, interval_s=3))
    assert config["global"]["scrape_interval"] == config["global"]["evaluation_interval"] == "3s"
    assert config["rule_files"] == ["/x/recording_rules.yml", "/x/alerting_rules.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "cxpulse"  # the name the project's CxWorkerDown rule selects
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:6123"]}]


def test_the_project_rules_are_found_from_the_source_tree() -> None:
    assert project_rule_files() == [RECORDING_RULES, ALERTING_RULES]
    assert project_rule_files(Path("/nonexistent")) == []


def test_promtool_accepts_the_demo_config_with_the_project_rules(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config(6123, project_rule_files()))
    run_promtool(["check", "config", config])


def test_without_the_binary_the_demo_gets_no_url() -> None:
    with demo_prometheus(6123, None) as url:
        assert url is None


@pytest.mark.integration
def test_the_server_comes_up_with_the_rules_and_leaves_nothing_behind() -> None:
    binary = prometheus_binary()
    if binary is None:
        pytest.skip("no prometheus binary (Debian package prometheus)")
    with demo_prometheus(1, binary) as url:  # nothing listens on port 1: target down
        assert url is not None
        with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=5) as resp:
            groups = json.load(resp)["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert {"CxFirstResponseSlowdown", "CxAlertFiring"} <= {r["name"] for r in rules}
        with urllib.request.urlopen(f"{url}/api/v1/status/flags", timeout=5) as resp:
            tsdb = Path(json.load(resp)["data"]["storage.tsdb.path"])
        assert tsdb.exists()
    assert not tsdb.parent.exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/-/ready", timeout=2)
