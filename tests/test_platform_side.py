"""The platform's side in the report and the operational laws in capacity.json: the target's scrapes read back
(labelled counters that appear late, resets, the scrapes' own requests left out), a synthetic sweep whose CPU
cost per request is known, the wording that sets the CPU bound beside the USL ceiling, and a real sweep of the
reference platform."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from schoolsurge.models.operational import Demand
from schoolsurge.report import build_report
from schoolsurge.report.platform.laws import LawWindow, OperationalLaws, SweepLaws
from schoolsurge.report.platform.series import read_series
from schoolsurge.rundir import (
    CAPACITY_COLUMNS,
    CAPACITY_CSV,
    CAPACITY_JSON,
    HISTORY_CSV,
    STATS_CSV,
    TARGET_METRICS_SERIES,
    TIMELINE,
    RunStatus,
    finish_manifest,
    start_manifest,
    write_json,
)

ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"
START_UNIX = 1_617_690_000.0
CPU = "schoolsurge_platform_cpu_seconds_total"
# The synthetic sweep: X(N) on a USL curve, the platform's CPU busy 0.05 + 0.002 X cores (2 ms a request) on 2.
ALPHA, BETA, GAMMA = 0.02, 0.0005, 5.0
IDLE_CORES, DEMAND_S, CORES = 0.05, 0.002, 2
STEPS = 10
STATS_HEADER = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Requests/s,50%,95%,99%"
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,99%,Total Request Count,Total Failure Count"
)


def _scrape(unix: float, samples: list[list[Any]]) -> str:
    return json.dumps({"unix": unix, "samples": samples}) + "\n"


def _write_series(run_dir: Path, lines: list[str]) -> None:
    (run_dir / TARGET_METRICS_SERIES).write_text("".join(lines))
    write_json(run_dir / TIMELINE, {"test_start_unix": START_UNIX, "window_start": "07:30", "speed": 36})


# ---- reading the scrapes ---------------------------------------------------------------------------------------


def test_scrapes_become_rates_between_scrapes(tmp_path: Path) -> None:
    def requests(route: str, status: str, value: float) -> list[Any]:
        return ["schoolsurge_http_requests_total", {"route": route, "status": status}, value]

    lines = [
        _scrape(
            START_UNIX - 1,
            [[CPU, {}, 10.0], ["schoolsurge_platform_cpu_cores", {}, 2.0], requests("/metrics", "200", 1)],
        ),
        _scrape(
            START_UNIX + 4,
            [
                [CPU, {}, 12.0],
                requests("/metrics", "200", 2),
                requests("/cas/login", "200", 40),
                requests("/cas/login", "503", 10),
                ["schoolsurge_requests_shed_total", {"reason": "login_rate"}, 10.0],
                ["schoolsurge_in_flight_requests", {}, 3.0],
            ],
        ),
        "{not a scrape\n",
        # the platform restarted: its counters start again from 0
        _scrape(START_UNIX + 9, [[CPU, {}, 1.0], requests("/cas/login", "200", 5)]),
    ]
    _write_series(tmp_path, lines)
    series = read_series(tmp_path, START_UNIX)
    assert series is not None and series.cpu_metric == CPU and series.cores == 2
    assert series.frame["run_s"].tolist() == [-1.0, 4.0, 9.0]
    rates = series.rates()
    # 2 CPU s in 5 s, then a reset: 1 CPU s since
    assert rates["cpu_s"].tolist() == pytest.approx([0.4, 0.2])
    assert rates["requests"].tolist() == pytest.approx([10.0, 1.0]), "/metrics left out; requests before: 0"
    assert rates["shed_login_rate"].tolist() == pytest.approx([2.0, 0.0])
    assert rates["admitted"].tolist() == pytest.approx([8.0, 1.0])
    assert series.between("cpu_s", 0.0, 4.0) == pytest.approx(1.6)
    assert series.between("cpu_s", -2.0, 4.0) is None, "outside the scraped span"
    assert series.totals()["cpu_s"] == pytest.approx(3.0)


def test_another_target_s_process_cpu_is_used_and_no_file_is_no_section(tmp_path: Path) -> None:
    assert read_series(tmp_path, START_UNIX) is None
    lines = [_scrape(START_UNIX + t, [["process_cpu_seconds_total", {}, t / 10]]) for t in (0, 5, 10)]
    _write_series(tmp_path, lines)
    series = read_series(tmp_path, START_UNIX)
    assert series is not None and series.cpu_metric == "process_cpu_seconds_total" and series.cores is None
    assert series.rates()["cpu_s"].tolist() == pytest.approx([0.1, 0.1])


# ---- the laws beside the USL ---------------------------------------------------------------------------------


def _laws(bound_over: float, shed: dict[str, float], utilisation: float) -> OperationalLaws:
    # one step at 100 requests/s over 10 s on 2 cores, busy `utilisation`: D = 2 U / 100, bound 100 / U
    window = LawWindow("4", 0.0, 10.0, Demand(2 * utilisation * 10, 10.0, 1000.0, 2))
    laws = SweepLaws(2, CPU, [window], shed=shed)
    laws.usl_ceiling, laws.usl_ceiling_kind = (100 / utilisation) / bound_over, "peak_throughput"
    return laws


def test_the_explanation_says_which_resource_bound() -> None:
    profile = _laws(8.0, {"login_rate": 900.0, "queue_full": 0.0}, 0.1)
    assert profile.bound == pytest.approx(1000.0) and profile.bound_over_usl == pytest.approx(8.0)
    text = profile.explanation()
    # A limit refused work: the CPU's bound is stated beside it, never as the ceiling to plan with (issue 22).
    assert "the CPU's own bound" in text and "profile's limits" in text and "describes that limit" in text
    assert "ceiling to plan with" not in text and "is the bottleneck" not in text
    assert "D = m U / X = 2.00 ms" in text and "X <= m / D = 1,000 requests/s" in text
    machine = _laws(5.0, {"login_rate": 3.0, "queue_timeout": 40.0}, 0.2).explanation()
    assert "admission control" in machine
    cpu = _laws(1.1, {}, 0.9).explanation()
    assert "agree within 25%" in cpu and "CPU is the bottleneck" in cpu and "shed nothing" in cpu
    beyond = _laws(0.5, {}, 0.95).explanation()
    assert "extrapolates past what the CPU allows" in beyond
    linear = _laws(1.0, {"sessions_full": 600.0}, 0.2)
    linear.usl_ceiling, linear.usl_ceiling_kind, linear.usl_fitted = None, None, True
    assert "linear over the measured steps" in linear.explanation() and "5.0 times below" in linear.explanation()
    linear.usl_fitted = False
    assert "No USL fit to compare it with" in linear.explanation()


def _usl(n: float) -> float:
    return GAMMA * n / (1 + ALPHA * (n - 1) + BETA * n * (n - 1))


def _synthetic_sweep(tmp_path: Path) -> Path:
    """A sweep's capacity.csv on a USL curve, and the platform's scrapes every 5 s with CPU busy
    IDLE_CORES + DEMAND_S x X cores in each step (the measured parts' bounds fall on scrapes)."""
    run_dir = tmp_path / "20210406T063000Z-first-day-2021"
    run_dir.mkdir()
    sweep = {"steps": STEPS, "settle_s": 60.0, "measure_s": 40.0, "stop_margin": 5}
    start_manifest(run_dir, FIRST_DAY, scenario="first-day-2021", scale=1e-4, speed=36.0, kind="sweep", sweep=sweep)
    finish_manifest(run_dir, RunStatus.COMPLETED)
    (run_dir / STATS_CSV).write_text(f"{STATS_HEADER}\n,Aggregated,0,0,0,0,0,0,0,0\n")
    (run_dir / HISTORY_CSV).write_text(f"{HISTORY_HEADER}\n")
    rows, busy = [], []
    for step in range(1, STEPS + 1):
        n, x = 5.0 * step, _usl(5.0 * step)
        busy.append(IDLE_CORES + DEMAND_S * x)
        rows.append(
            {
                "step": step,
                "status": "measured",
                "offered_arrivals_per_s": n / 20,
                "start_s": (step - 1) * 100,
                "measured_from_s": (step - 1) * 100 + 60,
                "end_s": step * 100,
                "arrivals": 10,
                "logins_per_s": 0.03 * x,
                "requests_per_s": x,
                "successful_requests_per_s": x,
                "concurrency": n,
                "time_to_login_p95_ms": 100,
                "error_ratio": 0,
                "late": 0,
                "dropped": 0,
                "slo_met": "true",
            }
        )
    with (run_dir / CAPACITY_CSV).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CAPACITY_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    lines, cpu = [], 0.0
    for t in range(0, STEPS * 100 + 1, 5):
        shed = [["schoolsurge_requests_shed_total", {"reason": "login_rate"}, 3.0 * t]]
        lines.append(_scrape(START_UNIX + t, [[CPU, {}, cpu], ["schoolsurge_platform_cpu_cores", {}, CORES], *shed]))
        cpu += 5 * busy[min(t // 100, STEPS - 1)]
    _write_series(run_dir, lines)
    return run_dir


def test_capacity_json_sets_the_cpu_bound_beside_the_usl_ceiling(tmp_path: Path) -> None:
    run_dir = _synthetic_sweep(tmp_path)
    html = build_report(run_dir).read_text()
    answer = json.loads((run_dir / CAPACITY_JSON).read_text())
    laws = answer["operational_laws"]
    top = max(range(1, STEPS + 1), key=lambda step: _usl(5.0 * step))
    x = _usl(5.0 * top)
    demand = (IDLE_CORES + DEMAND_S * x) / x  # D = m U / X = busy cores / X
    assert laws["cores"] == CORES and laws["at"] == str(top)
    assert laws["service_demand_s"] == pytest.approx(demand)
    assert laws["utilisation"] == pytest.approx((IDLE_CORES + DEMAND_S * x) / CORES)
    assert laws["bound_requests_per_s"] == pytest.approx(CORES / demand)
    assert laws["bound_requests_per_s_national"] == pytest.approx(CORES / demand / (1e-4 * 36))
    assert laws["marginal"]["service_demand_s"] == pytest.approx(DEMAND_S)
    assert laws["marginal"]["idle_cores"] == pytest.approx(IDLE_CORES)
    assert laws["marginal"]["bound_requests_per_s"] == pytest.approx((CORES - IDLE_CORES) / DEMAND_S)
    assert len(laws["windows"]) == STEPS
    assert laws["usl_ceiling"] == "peak_throughput"
    assert laws["usl_ceiling_requests_per_s"] == pytest.approx(answer["usl"]["peak_throughput"])
    assert laws["bound_over_usl_ceiling"] == pytest.approx(
        laws["bound_requests_per_s"] / answer["usl"]["peak_throughput"]
    )
    assert laws["shed_by_reason"]["login_rate"] == pytest.approx(3000.0)
    assert "profile's limits" in laws["explanation"] and "the CPU's own bound" in laws["explanation"]
    section = html[html.index('<h2 id="platform">') :]
    section = section[: section.index("<h2", 5)]
    assert section.count("<tr>") >= STEPS + 1, "the laws per step"
    assert "run time (s)" in section and "scenario clock" not in section, "a sweep is drawn in run seconds"


# ---- a real sweep ------------------------------------------------------------------------------------------------


def test_a_real_sweep_has_the_operational_laws_in_capacity_json(smoke_sweep: Path) -> None:
    answer = json.loads((smoke_sweep / CAPACITY_JSON).read_text())
    laws = answer["operational_laws"]
    assert laws is not None and laws["cores"] >= 1
    measured = {str(int(step["step"])): step for step in answer["steps"] if step["status"] in ("measured", "stopped")}
    # One window per measured step (in order of offered load: refinement steps sit between the planned ones).
    assert sorted(w["window"] for w in laws["windows"]) == sorted(measured)
    for window in laws["windows"]:
        step = measured[window["window"]]
        assert window["start_s"] == pytest.approx(step["measured_from_s"]) and window["end_s"] == step["end_s"]
        assert window["successful_requests_per_s"] == pytest.approx(step["successful_requests_per_s"])
        assert 0 < window["cpu_utilisation"] < 1
        # the utilisation law: D = m U / X, the bound m / D = X / U
        x, u = window["successful_requests_per_s"], window["cpu_utilisation"]
        assert window["cpu_demand_s"] == pytest.approx(laws["cores"] * u / x)
        assert window["cpu_bound_requests_per_s"] == pytest.approx(x / u)
    best = max(laws["windows"], key=lambda w: w["successful_requests_per_s"])
    assert laws["bound_requests_per_s"] == pytest.approx(best["cpu_bound_requests_per_s"])
    assert math.isfinite(laws["bound_requests_per_s"]) and laws["explanation"].startswith("Operational laws:")
    html = (smoke_sweep / "report.html").read_text()
    section = html[html.index('<h2 id="platform">') :]
    assert re.search(r"<th>m / D \(req/s\)</th>", section)
    # logins, cpu, concurrency, admission, laws: drawn, or one line of text when 0 throughout
    assert section.count('<figure id="chart-platform-') + section.count('<p class="collapsed" id="chart-platform-') == 5
