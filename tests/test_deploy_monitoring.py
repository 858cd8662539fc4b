"""deploy/prometheus/prometheus.yml and deploy/grafana/schoolsurge-dashboard.json: the scrape config is valid
(promtool, when Debian's prometheus package is installed), the dashboard is valid JSON whose every panel queries
metrics that the run or the platform really exports (the run's from the exporter's declared names, which
tests/test_monitoring.py checks against a real scrape; the platform's from a real /metrics), and whose queries
are valid PromQL (promtool check rules, with Grafana's variables filled in)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.engine.exporter import metric_names

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "schoolsurge-dashboard.json"
PROMTOOL = shutil.which("promtool")
METRIC = re.compile(r"\b(schoolsurge_[a-z0-9_]+)")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$run": ".*", "${datasource}": "prometheus"}


@pytest.fixture(scope="module")
def platform_names(platform_url: str) -> set[str]:
    """The names the session's shared platform exports (conftest `platform_url`; read only)."""
    for _ in range(2):  # the second scrape finds the first counted among the requests (labelled by route)
        with urllib.request.urlopen(f"{platform_url}/metrics", timeout=10) as response:
            text = response.read().decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_the_dashboard_is_grafana_json_with_the_surge_and_the_platform() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 30
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"])
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"datasource", "run"}
    titles = " | ".join(panel["title"] for panel in panels)
    for wanted in ("Arrivals", "People in a session", "Time to log in", "failures by kind", "generator CPU"):
        assert wanted in titles, wanted
    for wanted in ("Platform CPU", "in flight", "shed (503 by reason)", "Login throttling", "Database time"):
        assert wanted in titles, wanted
    queries = " ".join(expr for _, expr in _queries(dashboard))
    assert "histogram_quantile(0.95" in queries and "schoolsurge_surge_time_to_login_seconds_bucket" in queries


def test_every_query_names_exported_metrics(platform_names: set[str]) -> None:
    surge = metric_names()
    assert not surge & platform_names, "the run's names and the platform's are distinct"
    exported = surge | platform_names
    for title, expr in _queries(_dashboard()):
        names = set(METRIC.findall(expr))
        assert names, (title, expr)
        assert names <= exported, (title, names - exported)


@pytest.mark.skipif(PROMTOOL is None, reason="no promtool (Debian's prometheus package)")
def test_promtool_accepts_the_scrape_config_and_the_queries(tmp_path: Path) -> None:
    check = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    rules = []
    for number, (_, expr) in enumerate(_queries(_dashboard())):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"schoolsurge:dashboard_query_{number}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    check = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_scrape_config_scrapes_the_run_and_the_platform() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"schoolsurge", "platform"}
    assert jobs["schoolsurge"]["static_configs"][0]["targets"] == ["127.0.0.1:9646"]
    assert jobs["platform"]["metrics_path"] == "/metrics"
