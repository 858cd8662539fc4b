"""Prometheus out and in, for real: a smoke run against the reference platform, with the run's /metrics served
on a port picked here and a real Prometheus (Debian's `prometheus`) scraping both the run and the platform every
second. Prometheus's totals must be sessions.csv's and Locust's; the run directory must hold the platform's
scrapes (target_metrics.jsonl) and the report its "Platform side". Only the Prometheus checks need the binary."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from conftest import HALF_HOUR, SHORT_SESSION_MINUTES, SMOKE_SPEED, smoke_half_hour
from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.engine.exporter import metric_names
from schoolsurge.models.replay import Replay
from schoolsurge.parameters import resolve_parameters
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.rundir import (
    FAILURE_COUNTERS,
    HISTOGRAMS,
    MANIFEST,
    SESSIONS_CSV,
    STATS_CSV,
    TARGET_METRICS,
    TARGET_METRICS_SERIES,
    Counter,
    merged,
    read_histograms,
)
from schoolsurge.runner import RunOutcome, RunRequest, free_loopback_port, run
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
SPEED = SMOKE_SPEED  # smoke's first half hour in 7.5 s: a scrape a second gives several during the run
LINGER_S = 3  # the run's final figures stay up for Prometheus's last scrapes (every second)
PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (apt-get install prometheus)")


def _get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


@dataclass
class Monitored:
    outcome: RunOutcome
    metrics_port: int
    prometheus_url: str | None
    scrapes_during_run: list[str] = field(default_factory=list)

    def query(self, expression: str) -> list[dict]:
        assert self.prometheus_url is not None
        url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
        answer = json.loads(_get(url))
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def final(self, metric: str, by: tuple[str, ...] = ()) -> dict[tuple[str, ...], float]:
        """The run's last value of a counter as Prometheus stored it (the target is gone by now: its series are
        stale at the current instant, so the range selector takes the last sample before that)."""
        selector = f'{metric}{{run="{self.outcome.run_dir.name}"}}'
        rows = self.query(f"max_over_time({selector}[10m])")
        return {tuple(row["metric"].get(label, "") for label in by): float(row["value"][1]) for row in rows}


def _prometheus_config(path: Path, run_port: int, platform_url: str) -> None:
    platform = urllib.parse.urlsplit(platform_url).netloc
    path.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: schoolsurge\n    static_configs:\n      - targets: ['127.0.0.1:{run_port}']\n"
        f"  - job_name: platform\n    static_configs:\n      - targets: ['{platform}']\n"
    )


@contextlib.contextmanager
def _prometheus(tmp: Path, run_port: int, platform_url: str) -> Iterator[str | None]:
    if PROMETHEUS is None:
        yield None
        return
    config = tmp / "prometheus.yml"
    _prometheus_config(config, run_port, platform_url)
    port = free_loopback_port()
    log = (tmp / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if "Ready" in _get(f"{url}/-/ready"):
                    break
            assert process.poll() is None, (tmp / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "prometheus did not get ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _poll(url: str, texts: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError):
            texts.append(_get(url, timeout=1))
        stop.wait(1.0)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    tmp = tmp_path_factory.mktemp("monitoring")
    scenario_path = smoke_half_hour(tmp, session_minutes=SHORT_SESSION_MINUTES)  # ends soon after its window
    scenario = load_scenario(scenario_path)
    parameters = resolve_parameters(scenario, speed=SPEED)
    replay = Replay(scenario, parameters.scale, parameters.speed)
    run_port = free_loopback_port()
    with (
        PlatformProcess(
            seed=parameters.seed,
            size=replay.platform_pupils,
            hash_cost=scenario.platform.hash_cost,
            profile=scenario.platform.profile,
            run_scale=replay.scale,
            run_speed=replay.speed,
        ) as platform,
        _prometheus(tmp, run_port, platform.base_url) as prometheus,
    ):
        texts: list[str] = []
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(f"http://127.0.0.1:{run_port}/metrics", texts, stop))
        poller.start()
        try:
            outcome = run(
                RunRequest(
                    scenario_path=scenario_path,
                    target=platform.base_url,
                    speed=SPEED,
                    reports_dir=tmp / "reports",
                    monitoring_arguments=["--metrics-port", str(run_port), "--metrics-linger", str(LINGER_S)],
                )
            )
        finally:
            stop.set()
            poller.join()
        yield Monitored(outcome, run_port, prometheus, texts)


# ---- out: the run's /metrics -------------------------------------------------------------------------------


def test_the_run_serves_its_metrics_while_it_runs(monitored: Monitored) -> None:
    manifest = json.loads((monitored.outcome.run_dir / MANIFEST).read_text())
    assert manifest["metrics_url"] == f"http://127.0.0.1:{monitored.metrics_port}/metrics"
    assert len(monitored.scrapes_during_run) >= 5, "the endpoint answered all along the run"
    served: set[str] = set()
    for family in text_string_to_metric_families(monitored.scrapes_during_run[-1]):
        for sample in family.samples:
            served.add(sample.name)
            assert sample.labels["scenario"] == "smoke" and sample.labels["run"] == monitored.outcome.run_dir.name
    assert served == metric_names(), "the names the exporter declares are the ones it serves"
    assert all(name.startswith("schoolsurge_surge_") for name in served)
    platform = {
        sample.name
        for family in text_string_to_metric_families((monitored.outcome.run_dir / TARGET_METRICS).read_text())
        for sample in family.samples
    }
    assert platform and not platform & served, "no name is both the platform's and the run's"
    started = [
        float(re.search(r"^schoolsurge_surge_arrivals_started_total\{.*\} (\S+)$", text, re.M)[1])  # type: ignore[index]
        for text in monitored.scrapes_during_run
    ]
    assert started == sorted(started) and started[-1] > started[0], "a live counter that grows"


@needs_prometheus
def test_prometheus_totals_are_the_run_directory_s(monitored: Monitored) -> None:
    run_dir = monitored.outcome.run_dir
    sessions = pd.read_csv(run_dir / SESSIONS_CSV)
    for metric, column in (
        ("schoolsurge_surge_arrivals_scheduled_total", Counter.SCHEDULED),
        ("schoolsurge_surge_arrivals_started_total", Counter.STARTED),
        ("schoolsurge_surge_logins_succeeded_total", Counter.LOGINS_SUCCEEDED),
        ("schoolsurge_surge_login_attempts_total", Counter.LOGIN_ATTEMPTS),
        ("schoolsurge_surge_requests_total", Counter.REQUESTS),
        ("schoolsurge_surge_came_for_virtual_class_total", Counter.CAME_FOR_VIRTUAL_CLASS),
    ):
        total = int(sessions[column.value].sum())
        assert total > 0, column
        assert monitored.final(metric) == {(): total}, metric
    failures = monitored.final("schoolsurge_surge_request_failures_total", by=("kind",))
    for counter in FAILURE_COUNTERS:
        assert failures[(counter.value.removeprefix("failures_"),)] == sessions[counter.value].sum(), counter
    logins = merged(read_histograms(run_dir / HISTOGRAMS).values()).get_total_count()
    never = int(sessions[Counter.ABANDONED.value].sum() + sessions[Counter.UNFINISHED.value].sum())
    assert monitored.final("schoolsurge_surge_time_to_login_seconds_count") == {(): logins + never}
    stats = pd.read_csv(run_dir / STATS_CSV)
    stats = stats[stats["Name"] != "Aggregated"]
    rows = zip(stats["Type"], stats["Name"], stats["Request Count"], strict=True)
    expected = {(str(kind), str(name)): float(count) for kind, name, count in rows}
    assert monitored.final("schoolsurge_surge_step_requests_total", by=("method", "step")) == expected


@needs_prometheus
def test_prometheus_reads_the_login_p95_and_the_platform_side_by_side(monitored: Monitored) -> None:
    name = monitored.outcome.run_dir.name
    p95 = monitored.query(
        "histogram_quantile(0.95, sum by (le) "
        f'(max_over_time(schoolsurge_surge_time_to_login_seconds_bucket{{run="{name}"}}[10m])))'
    )
    assert len(p95) == 1 and 0 < float(p95[0]["value"][1]) < math.inf
    cpu = monitored.query('max_over_time(schoolsurge_platform_cpu_seconds_total{job="platform"}[10m])')
    assert len(cpu) == 1 and float(cpu[0]["value"][1]) > 0
    up = {row["metric"]["job"] for row in monitored.query("max_over_time(up[10m]) == 1")}
    assert up == {"schoolsurge", "platform"}


# ---- in: the platform's side, recorded and reported ----------------------------------------------------------


def test_the_platform_is_scraped_every_few_seconds_into_the_run_directory(monitored: Monitored) -> None:
    lines = [json.loads(line) for line in (monitored.outcome.run_dir / TARGET_METRICS_SERIES).read_text().splitlines()]
    assert len(lines) >= 3, "15 s of load or more, a scrape every 5 s, and the last one at the end"
    stamps = [line["unix"] for line in lines]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps[:-1]) > 3, "every few seconds (the last one, at the end, may come sooner)"
    cpu = [
        sum(value for name, _, value in line["samples"] if name == "schoolsurge_platform_cpu_seconds_total")
        for line in lines
    ]
    assert cpu == sorted(cpu) and cpu[-1] > cpu[0]
    names = {name for line in lines for name, _, _ in line["samples"]}
    assert {
        "schoolsurge_in_flight_requests",
        "schoolsurge_requests_shed_total",
        "schoolsurge_platform_cpu_cores",
    } <= names
    assert "schoolsurge_db_statement_duration_seconds_sum" in names
    assert not any(name.endswith("_bucket") for name in names), "histogram buckets are left out"


def test_the_report_has_the_platform_side(monitored: Monitored) -> None:
    html = (monitored.outcome.run_dir / "report.html").read_text()
    assert '<a href="#platform">Platform side</a>' in html
    section = html[html.index('<h2 id="platform">') :]
    section = section[: section.index("<h2", 5)]
    # Drawn, or one line of text when its figures are 0 throughout (a light run's requests in flight, say).
    charts = re.findall(r'<(?:figure|p class="collapsed") id="chart-(platform-[a-z]+)">', section)
    assert charts == ["platform-logins", "platform-cpu", "platform-concurrency", "platform-admission", "platform-laws"]
    assert section.count('<svg class="chart"') + section.count('<p class="collapsed"') == 5
    assert section.count('<svg class="chart"') >= 3  # logins, CPU and the laws always have figures
    assert "scenario clock (HH:MM)" in section and f"SLO window {'-'.join(HALF_HOUR)}" in section
    assert "CPU bound X &lt;= m / D" in section and "Operational laws:" in section
