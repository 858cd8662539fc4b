"""The run's /metrics on a ledger written by hand: counters are the ledger's totals, the time-to-login histogram's
buckets are its HdrHistograms' counts (merged over seconds), gauges come from a second every process has
reported, and a port that cannot be had leaves the run without /metrics rather than without a run."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from locust.stats import RequestStats
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.engine.exporter import SurgeCollector, _settled_gauges, metric_names, start_metrics_server
from schoolsurge.engine.ledger import Ledger
from schoolsurge.models.replay import Replay
from schoolsurge.monitoring_options import METRICS_PORT_OFF, metrics_port
from schoolsurge.rundir import Counter, Gauge
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"  # login p95 objective 1,500 ms


class LocalRole:
    pass


def _engine(ledger: Ledger) -> Any:
    scenario = load_scenario(SMOKE)
    replay = Replay(scenario, 2e-5, 120)
    stats = RequestStats()
    stats.log_request("GET", "dashboard", 12, 100)
    stats.log_request("GET", "dashboard", 15, 100)
    stats.log_error("GET", "dashboard", "HTTP 503")
    context = SimpleNamespace(scenario=scenario, replay=replay, run_dir=Path("/r/20210406T063000Z-smoke"), seed=2021)
    queue = SimpleNamespace(loaded=True, run_seconds=lambda: 10.0)
    environment = SimpleNamespace(runner=None, stats=stats)
    return SimpleNamespace(
        context=context,
        environment=environment,
        ledger=lambda: ledger,
        role=LocalRole(),
        share=SimpleNamespace(queue=queue),
    )


def _samples(engine: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SurgeCollector(engine))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k not in ("scenario", "run")))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_histograms_and_stats_are_the_ledger_s_and_locust_s() -> None:
    ledger = Ledger()
    for second, milliseconds in ((1, 80), (1, 1400), (2, 1600), (3, 40_000)):
        ledger.count(second, Counter.STARTED)
        ledger.count(second, Counter.LOGINS_SUCCEEDED)
        ledger.time_to_login(second, milliseconds)
    ledger.count(4, Counter.ABANDONED, 2)
    ledger.count(4, Counter.CAME_FOR_VIRTUAL_CLASS, 3, group="secondary-pupils")
    ledger.request(2, 30, None)
    ledger.request(3, 300, Counter.FAILURES_503)
    samples = _samples(_engine(ledger))
    no_runner = {"schoolsurge_surge_generator_cpu_usage_ratio"}  # no Locust runner here: no process to sample
    assert {name for name, _ in samples} == metric_names() - no_runner
    assert samples[("schoolsurge_surge_arrivals_started_total", ())] == 4
    assert samples[("schoolsurge_surge_gave_up_total", (("when", "logging_in"),))] == 2
    assert samples[("schoolsurge_surge_came_for_virtual_class_total", ())] == 3
    assert samples[("schoolsurge_surge_requests_total", ())] == 2
    assert samples[("schoolsurge_surge_request_failures_total", (("kind", "503"),))] == 1
    assert samples[("schoolsurge_surge_request_failures_total", (("kind", "429"),))] == 0

    def bucket(le: str) -> float:
        return samples[("schoolsurge_surge_time_to_login_seconds_bucket", (("le", le),))]

    # 80 ms, 1.4 s, 1.6 s, 40 s: the objective (1.5 s) is a bucket of its own
    assert (bucket("0.1"), bucket("1.5"), bucket("2.0"), bucket("30.0"), bucket("60.0")) == (1, 2, 3, 3, 4)
    # The 2 who gave up count as never logged in: in +Inf only (rundir/figures.py, as the report counts them).
    assert bucket("+Inf") == samples[("schoolsurge_surge_time_to_login_seconds_count", ())] == 4 + 2
    assert samples[("schoolsurge_surge_time_to_login_seconds_sum", ())] == pytest.approx(43.08, rel=0.01)
    assert samples[("schoolsurge_surge_request_duration_seconds_count", ())] == 2
    step = (("method", "GET"), ("step", "dashboard"))
    assert samples[("schoolsurge_surge_step_requests_total", step)] == 2
    assert samples[("schoolsurge_surge_step_failures_total", step)] == 1
    assert samples[("schoolsurge_surge_scenario_clock_seconds", ())] == pytest.approx(7.5 * 3600 + 10 * 120)


def test_gauges_come_from_a_second_every_process_has_reported() -> None:
    ledger = Ledger()
    for second, pool in ((5, 40), (6, 42), (7, 44), (8, 45), (9, 21), (10, 23)):  # 9 and 10: one worker so far
        ledger.sample(second, Gauge.POOL_SIZE, pool)
        ledger.sample(second, Gauge.ACTIVE_SESSIONS, pool // 2)
    assert _settled_gauges(ledger, 0)[Gauge.POOL_SIZE] == 23  # one process: its latest second
    assert _settled_gauges(ledger, 4)[Gauge.POOL_SIZE] == 42  # a master: 4 s before the latest
    assert _settled_gauges(Ledger(), 4) == {}
    assert _samples(_engine(ledger))[("schoolsurge_surge_agents", ())] == 23


def test_a_port_in_use_or_off_leaves_the_run_without_metrics(caplog: pytest.LogCaptureFixture) -> None:
    engine = _engine(Ledger())
    engine.results = None
    assert start_metrics_server(engine, argparse.Namespace(metrics_port=METRICS_PORT_OFF)) is None
    assert start_metrics_server(engine, None) is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert start_metrics_server(engine, argparse.Namespace(metrics_port=port, metrics_host="127.0.0.1")) is None
    assert "the run goes on without them" in caplog.text
    server = start_metrics_server(engine, argparse.Namespace(metrics_port=0, metrics_host="127.0.0.1"))
    assert server is not None and server.url.startswith("http://127.0.0.1:") and server.url.endswith("/metrics")
    server.stop()
    assert metrics_port("off") == METRICS_PORT_OFF and metrics_port("9646") == 9646
    with pytest.raises(argparse.ArgumentTypeError):
        metrics_port("70000")
