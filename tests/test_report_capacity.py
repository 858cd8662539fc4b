"""The capacity answer, first in the report: a sweep's card from a capacity.csv generated from a known USL curve
(so the fit must find that curve's peak), a normal run's card from sessions built with the engine's own ledger
and from a real run, capacity.json beside the report, and a malformed capacity.csv named in one line."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import SmokeRuns, assert_measured_the_platform

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.engine.ledger import Ledger, write_histograms, write_sessions_csv
from schoolsurge.errors import ReportError
from schoolsurge.models.population import national_curves
from schoolsurge.report import build_report, load_run
from schoolsurge.report.capacity import capacity_card, load_capacity_steps, run_card
from schoolsurge.report.capacity.demand_chart import DemandAgainstCapacity, demand_against_capacity
from schoolsurge.report.capacity.wording import rate_text
from schoolsurge.report.outcome.answer import read_answer
from schoolsurge.report.outcome.served import served_share
from schoolsurge.rundir import (
    CAPACITY_COLUMNS,
    CAPACITY_CSV,
    CAPACITY_JSON,
    FAILURE_COUNTERS,
    HISTORY_CSV,
    SESSIONS_CSV,
    STATS_CSV,
    TIMELINE,
    Counter,
    Gauge,
    RunStatus,
    finish_manifest,
    read_histograms,
    start_manifest,
    write_json,
)
from schoolsurge.runner import RunOutcome
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"  # SLOs: login p50 500, p95 2000, p99 5000 ms; errors 1%
SMOKE = ROOT / "scenarios" / "smoke.yaml"  # SLOs: login p95 1500 ms; errors 1%; window 07:30-08:30

# The curve the synthetic sweep is drawn from: X(N) = γN / (1 + α(N−1) + βN(N−1)).
ALPHA, BETA, GAMMA = 0.02, 0.0005, 5.0
PEAK_N = math.sqrt((1 - ALPHA) / BETA)  # 44.3 people in a session
SCALE, SPEED = 1e-4, 36.0
LOAD_FRACTION = SCALE * SPEED
MEASURED_STEPS, ALL_STEPS = 10, 12  # the 10th breaches by the stop margin; 11 and 12 are skipped
LOGINS_PER_REQUEST = 0.03

STATS_HEADER = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Requests/s,50%,95%,99%"
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,99%,Total Request Count,Total Failure Count"
)


def usl(n: float) -> float:
    return GAMMA * n / (1 + ALPHA * (n - 1) + BETA * n * (n - 1))


def _locust_files(run_dir: Path) -> None:
    """Locust's two statistics files, valid and empty: a sweep's figures come from capacity.csv."""
    (run_dir / STATS_CSV).write_text(f"{STATS_HEADER}\n,Aggregated,0,0,0,0,0,0,0,0\n")
    (run_dir / HISTORY_CSV).write_text(f"{HISTORY_HEADER}\n")


def _login_p95(n: float) -> float:
    """Time to log in p95 (ms): crosses the 2,000 ms objective between N = 25 and N = 30."""
    return 400 * math.exp((n - 10) / 10)


def _step_rows() -> list[dict[str, Any]]:
    """A sweep over N = 5, 10, ... 50 people in a session, throughput on the USL curve with 0.5% noise. Login
    p50 and p99 cross their objectives later than p95 (p95 / 5 against 500, 2 x p95 against 5,000); the error
    ratio crosses 1% near N = 39; request latency climbs steeply towards N*."""
    rng = np.random.default_rng(2021)
    rows = []
    for step in range(1, ALL_STEPS + 1):
        n = 5.0 * step
        offered = n / 20
        base = {
            "step": step,
            "offered_arrivals_per_s": offered,
            "national_arrivals_per_s": offered / LOAD_FRACTION,
            "start_s": (step - 1) * 100,
            "measured_from_s": (step - 1) * 100 + 60,
            "end_s": step * 100,
        }
        if step > MEASURED_STEPS:
            rows.append({**base, "status": "skipped"})
            continue
        successful = usl(n) * (1 + rng.normal(0, 0.005))
        error_ratio = 0.001 * math.exp((n - 30) / 4)
        requests = successful / (1 - error_ratio)
        login95 = _login_p95(n)
        request95 = 40 + 4000 * (n / PEAK_N) ** 8
        row = {
            **base,
            "status": "stopped" if step == MEASURED_STEPS else "measured",
            "arrivals": round(offered * 40),
            "logins_per_s": successful * LOGINS_PER_REQUEST,
            "requests_per_s": requests,
            "successful_requests_per_s": successful,
            **{f"{counter.value}_per_s": 0.0 for counter in FAILURE_COUNTERS},
            "failures_503_per_s": requests - successful,
            "concurrency": n,
            "in_virtual_class": 0.3 * n,
            "time_to_login_p50_ms": login95 / 5,
            "time_to_login_p95_ms": login95,
            "time_to_login_p99_ms": 2 * login95,
            "request_latency_p50_ms": request95 / 3,
            "request_latency_p95_ms": request95,
            "request_latency_p99_ms": 2 * request95,
            "error_ratio": error_ratio,
            "late": 0,
            "dropped": 0,
            "gave_up": 0,
            "generator_cpu_percent": 30.0,
        }
        breaches = [
            name
            for name, measured, limit in (
                ("login p50", login95 / 5, 500),
                ("login p95", login95, 2000),
                ("login p99", 2 * login95, 5000),
                ("error ratio", error_ratio, 0.01),
            )
            if measured > limit
        ]
        rows.append({**row, "slo_met": not breaches, "breaches": "; ".join(breaches)})
    return rows


def _write_steps(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    with (run_dir / CAPACITY_CSV).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CAPACITY_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)


def _sweep_dir(tmp_path: Path, rows: list[dict[str, Any]] | None = None, **plan: Any) -> Path:
    run_dir = tmp_path / "20210406T063000Z-first-day-2021"
    run_dir.mkdir()
    sweep = {"steps": ALL_STEPS, "settle_s": 60.0, "measure_s": 40.0, "stop_margin": 5, **plan}
    start_manifest(run_dir, FIRST_DAY, scenario="first-day-2021", scale=SCALE, speed=SPEED, kind="sweep", sweep=sweep)
    finish_manifest(run_dir, RunStatus.COMPLETED)
    _locust_files(run_dir)
    _write_steps(run_dir, _step_rows() if rows is None else rows)
    return run_dir


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    return _sweep_dir(tmp_path)


def _sections(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", title) for title in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]


def _capacity_section(html: str) -> str:
    return html[html.index('<h2 id="capacity">') : html.index("<h2>Run</h2>")]


# ---- a sweep -----------------------------------------------------------------------------------------------


def test_the_capacity_answer_comes_first_with_its_charts_and_steps(sweep_dir: Path) -> None:
    html = build_report(sweep_dir).read_text()
    sections = _sections(html)
    assert sections[:2] == ["The answer", "Capacity"], sections
    assert {"Run", "Service-level objectives", "Summary by step", "Versions"} <= set(sections), "others still there"
    capacity = _capacity_section(html)
    assert capacity.count("<svg") == 3  # the fit, the knee, and the national morning against the answer's range
    figures, answer, markup = _demand_chart(sweep_dir)
    assert isinstance(figures, DemandAgainstCapacity) and not len(figures.offered_per_s)
    assert (figures.held_per_s, figures.broke_per_s) == (
        answer["capacity"]["held_per_s_national"],
        answer["capacity"]["broke_per_s_national"],
    )
    assert f"one instance: {rate_text(figures.held_per_s)}-{rate_text(figures.broke_per_s)}/s" in markup
    assert capacity.count("<tr class=") == ALL_STEPS  # one row per step, the skipped ones included
    headline = json.loads((sweep_dir / CAPACITY_JSON).read_text())["headline"]
    for line in headline:
        assert line in html.replace("&#39;", "'").replace("&amp;", "&")
        if re.search(r"\d+ (successful requests|logins|requests)/s", line):
            assert "run terms" in line or "national" in line, line


def test_the_usl_fit_recovers_the_generating_curve(sweep_dir: Path) -> None:
    build_report(sweep_dir)
    answer = json.loads((sweep_dir / CAPACITY_JSON).read_text())
    fit = answer["usl"]
    assert fit["peak_concurrency"] == pytest.approx(PEAK_N, rel=0.05)
    assert fit["peak_throughput"] == pytest.approx(usl(PEAK_N), rel=0.03)
    assert fit["r_squared"] > 0.97
    assert fit["peak_concurrency_national"] == pytest.approx(fit["peak_concurrency"] / SCALE)
    assert fit["peak_throughput_national"] == pytest.approx(fit["peak_throughput"] / LOAD_FRACTION)
    usl_line = next(line for line in answer["headline"] if line.startswith("Peak throughput"))
    assert f"N* = {fit['peak_concurrency']:,.0f} people" in usl_line and f"R² {fit['r_squared']:.2f}" in usl_line


def test_slo_capacity_is_where_login_p95_crosses_its_objective_in_requests_and_logins(sweep_dir: Path) -> None:
    build_report(sweep_dir)
    answer = json.loads((sweep_dir / CAPACITY_JSON).read_text())
    rows = {row["step"]: row for row in _step_rows()}
    held, breached = rows[5], rows[6]  # N = 25 holds every objective, N = 30 breaches login p95 first
    share = (2000 - held["time_to_login_p95_ms"]) / (breached["time_to_login_p95_ms"] - held["time_to_login_p95_ms"])

    def between(column: str) -> float:
        return held[column] + share * (breached[column] - held[column])

    slo = answer["slo_capacity"]
    assert slo["limiting_objective"] == "login p95" and not slo["beyond_measured"]
    assert slo["successful_requests_per_s"] == pytest.approx(between("successful_requests_per_s"))
    assert slo["logins_per_s"] == pytest.approx(between("logins_per_s"))
    assert slo["successful_requests_per_s_national"] == pytest.approx(slo["successful_requests_per_s"] / LOAD_FRACTION)
    first = answer["headline"][0]
    assert first.startswith(f"This platform holds {slo['successful_requests_per_s']:.0f} successful requests/s and")
    assert "run terms;" in first and "nationally" in first and "login p95 breaks first" in first


def test_instances_needed_are_the_peak_demand_with_headroom_over_the_national_capacity(sweep_dir: Path) -> None:
    build_report(sweep_dir)
    answer = json.loads((sweep_dir / CAPACITY_JSON).read_text())
    slo = answer["slo_capacity"]
    curves = national_curves(load_scenario(FIRST_DAY))
    # Demand per clock minute (07:00-10:00 is whole minutes), its peak, 30% headroom, over one instance's capacity.
    peak_logins = curves.total_arrivals().reshape(-1, 60).mean(axis=1).max()
    peak_requests = curves.total_requests().reshape(-1, 60).mean(axis=1).max()
    by_logins = math.ceil(peak_logins * 1.3 / (slo["logins_per_s"] / LOAD_FRACTION))
    by_requests = math.ceil(peak_requests * 1.3 / (slo["successful_requests_per_s"] / LOAD_FRACTION))
    national = answer["national"]
    assert national["instances_needed"] == max(by_logins, by_requests)
    assert national["instances_needed"] > 1, "the synthetic platform is far smaller than the nation"
    assert national["headroom"] == 0.3
    line = next(line for line in answer["headline"] if "one instance's SLO capacity" in line)
    assert f"passes it from {national['exceeds_from']}" in line
    # One instance count on the page, the answer block's (from its range on offered load): the card gives none.
    assert not any("instances" in line for line in answer["headline"]), answer["headline"]


def test_skipped_steps_are_listed_and_shown_as_skipped(sweep_dir: Path) -> None:
    html = build_report(sweep_dir).read_text()
    answer = json.loads((sweep_dir / CAPACITY_JSON).read_text())
    assert answer["skipped_steps"] == [11, 12]
    assert any(
        line.startswith("Steps 11 and 12 of 12 were skipped") and "step 10" in line for line in answer["headline"]
    )
    assert _capacity_section(html).count('<tr class="skipped">') == 2
    assert [step["status"] for step in answer["steps"]].count("stopped") == 1


def test_the_knee_lies_where_latency_leaves_its_floor(sweep_dir: Path) -> None:
    card = capacity_card(load_run(sweep_dir))
    assert card is not None and card.knee_measure == "request latency p95"
    rows = {row["step"]: row for row in _step_rows()}
    # Request p95 is within 30% of its floor up to N = 25 and over 4x it from N = 40: the knee is in between.
    assert rows[5]["successful_requests_per_s"] < card.knee_requests_per_s < rows[8]["successful_requests_per_s"]
    assert any(line.startswith("The knee of latency is at") for line in card.headline())


def test_a_fit_that_cannot_be_made_is_reported_not_raised(tmp_path: Path) -> None:
    rows = _step_rows()
    for row in rows[3:]:  # three steps measured, the rest never run
        for column in list(row):
            if column not in ("step", "offered_arrivals_per_s", "national_arrivals_per_s", "start_s"):
                row.pop(column)
        row["status"] = "skipped"
    run_dir = _sweep_dir(tmp_path, rows)
    html = build_report(run_dir).read_text()
    answer = json.loads((run_dir / CAPACITY_JSON).read_text())
    error = answer["usl"]["error"]
    assert "4" in error and "\n" not in error, "the fit's own one-line message: it needs 4 points"
    assert "The USL could not be fitted" in html
    assert answer["slo_capacity"]["beyond_measured"], "the three steps held every objective"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("\x00garbage\n", "line 14: step status"),
        ("1,measured" + ",1" * 60 + "\n", "corrupt capacity steps"),
        ("13,measured,planned,1,1,0,0,0,1,1,1,1,0,0,0,0,0,0,many,1,1,1,1,1,1,1,0,0,0,0,1,true,\n", "concurrency"),
    ],
    ids=["nul-garbage", "too-many-fields", "not-a-number"],
)
def test_a_malformed_capacity_csv_is_named_in_one_line(
    sweep_dir: Path, line: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with (sweep_dir / CAPACITY_CSV).open("a") as handle:
        handle.write(line)
    with pytest.raises(ReportError, match=re.escape(expected)) as raised:
        load_capacity_steps(sweep_dir)
    assert str(sweep_dir / CAPACITY_CSV) in str(raised.value) and "\n" not in str(raised.value)
    assert main(["report", str(sweep_dir)]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert CAPACITY_CSV in error and "\n" not in error


def test_a_run_without_capacity_csv_has_no_steps(tmp_path: Path) -> None:
    assert load_capacity_steps(tmp_path) is None


# ---- a normal run ------------------------------------------------------------------------------------------

RUN_SCALE, RUN_SPEED = 2e-5, 15.0  # bins of round(60 / 15) = 4 run seconds (MIN_BIN_RUN_S), one scenario minute
RUN_BINS = 20
SLOW_BIN = 6  # its people take 3 s to log in: login p95 breaks at a low load
FAILING_FROM = 12  # from this bin on, 10% of requests fail


def _run_dir(tmp_path: Path) -> Path:
    """A normal run of the smoke scenario whose per-second figures are written by the engine's ledger: in bin b
    (4 run seconds), 2 b people start and log in each second (a bin of 6 holds 48 people: enough for a p95,
    rundir/figures.py `min_people`) and people send 10 b requests per second."""
    run_dir = tmp_path / "20210406T063000Z-smoke"
    run_dir.mkdir()
    start_manifest(run_dir, SMOKE, scenario="smoke", scale=RUN_SCALE, speed=RUN_SPEED, seed=2021)
    finish_manifest(run_dir, RunStatus.COMPLETED)
    write_json(run_dir / TIMELINE, {"test_start_unix": 1_617_690_600.0, "speed": RUN_SPEED})
    _locust_files(run_dir)
    ledger = Ledger()
    for second in range(4 * RUN_BINS):
        b = second // 4
        for name in (Counter.SCHEDULED, Counter.STARTED, Counter.LOGINS_SUCCEEDED, Counter.LOGIN_ATTEMPTS):
            ledger.count(second, name, 2 * b)
        for _ in range(2 * b):
            ledger.time_to_login(second, 3000 if b == SLOW_BIN else 300)
        for request in range(10 * b):
            ledger.request(second, 25.0, Counter.FAILURES_503 if b >= FAILING_FROM and request < b else None)
        ledger.sample(second, Gauge.ACTIVE_SESSIONS, 10 * b)
    write_sessions_csv(ledger, run_dir / SESSIONS_CSV)
    write_histograms(ledger, run_dir / "time_to_login.jsonl")
    return run_dir


def test_run_card_finds_the_load_held_and_the_lowest_load_that_broke(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    html = build_report(run_dir).read_text()
    assert _sections(html)[:2] == ["The answer", "Capacity"]
    assert _capacity_section(html).count("data:image/png;base64,") == 0, "the run card is the short one"
    answer = json.loads((run_dir / CAPACITY_JSON).read_text())
    assert answer["kind"] == "run"
    figures = answer["run"]
    fraction = RUN_SCALE * RUN_SPEED
    # Bins 7-11 hold every objective too, but above the lowest offered load that broke (bin 6's): held is the
    # highest offered load held three bins in a row below it (bins 3, 4, 5), never above broke.
    assert (
        figures["held"]["offered_per_s"] == 6 and figures["held"]["offered_per_s"] < figures["broke"]["offered_per_s"]
    )
    assert figures["held"]["requests_per_s"] == 10 * 3 and figures["held"]["logins_per_s"] == 6
    assert figures["held"]["requests_per_s_national"] == pytest.approx(30 / fraction)
    assert (figures["held"]["from"], figures["held"]["to"]) == ("07:33", "07:36")
    # The slow bin breaks login p95 at a lower load than the failing bins break the error ratio.
    assert figures["broke"]["requests_per_s"] == 10 * SLOW_BIN and figures["broke"]["from"] == "07:36"
    assert figures["broke"]["offered_per_s"] == 2 * SLOW_BIN
    assert figures["broke"]["breaches"][0].startswith("login p95")
    everyone = 8 * sum(range(RUN_BINS))
    assert figures["tried"] == everyone
    assert figures["within_login_p95_objective"] == everyone - 8 * SLOW_BIN
    assert figures["within_login_p95_objective_national"] == pytest.approx(
        figures["within_login_p95_objective"] / RUN_SCALE
    )
    headline = answer["headline"]
    assert headline[0].startswith("This run held 6.0 login attempts per second offered (first tries and retries) (30")
    assert headline[1].startswith("The lowest load at which they broke was 12 login attempts per second offered")
    assert any("on 6 April 2021, 37% did" in line for line in headline)


def test_run_card_reads_sessions_of_an_earlier_version(tmp_path: Path) -> None:
    run_dir = _run_dir(tmp_path)
    sessions = pd.read_csv(run_dir / SESSIONS_CSV)
    older = [Counter.REQUESTS, *FAILURE_COUNTERS, Gauge.GENERATOR_CPU_PERCENT]
    older += [c for c in sessions.columns if c.startswith("request_latency_")]
    sessions.drop(columns=older).to_csv(run_dir / SESSIONS_CSV, index=False)
    card = run_card(load_run(run_dir))
    assert card is not None and card.run is not None
    # No request counts (and Locust's history is empty): only the login objective is judged.
    assert card.run.broke is not None and card.run.broke.requests_per_s == 0
    # Below the break (bin 6), bins 0-2 hold fewer people than a p95 needs (20); bins 3-5 held three in a row.
    assert card.run.broke.offered_per_s == 2 * SLOW_BIN
    assert card.run.held is not None and card.run.held.offered_per_s == 6
    assert any("come from nowhere" in note for note in card.notes)
    assert card.headline()[0].startswith("This run held 6.0 login attempts per second offered")
    assert "12 login attempts per second offered (first tries and retries) (12 logins/s achieved" in card.headline()[1]


def test_a_real_run_gets_the_short_card_first(smoke_run: RunOutcome) -> None:
    assert_measured_the_platform(smoke_run.run_dir)
    run_dir = smoke_run.run_dir
    html = (run_dir / "report.html").read_text()
    assert _sections(html)[:2] == ["The answer", "Capacity"]
    capacity = _capacity_section(html)
    assert capacity.count("<svg") + capacity.count("data:image/png;base64,") == 0, "the run card adds no chart"
    answer = json.loads((run_dir / CAPACITY_JSON).read_text())
    figures = answer["run"]
    data = load_run(run_dir)
    served = served_share(data)
    assert served is not None and (figures["served"], figures["tried"]) == (served.served, served.tried)
    # On this healthy platform every login takes well under the 1,500 ms objective: all of them count.
    histograms = read_histograms(run_dir / "time_to_login.jsonl")
    assert max(h.get_max_value() for h in histograms.values()) <= 1500
    assert figures["within_login_p95_objective"] == sum(h.get_total_count() for h in histograms.values())
    assert figures["held"] is not None and figures["broke"] is None
    assert figures["held"]["requests_per_s"] <= figures["top"]["requests_per_s"]
    fraction = data.scale * data.speed
    assert figures["top"]["requests_per_s_national"] == pytest.approx(figures["top"]["requests_per_s"] / fraction)
    for line in answer["headline"]:
        assert "run terms" in line


def test_the_answer_and_the_capacity_card_state_one_capacity_on_offered_load(tmp_path: Path) -> None:
    """Issue 22: held above broke was said when both were achieved load; the answer and the card now state the
    same offered loads, held below broke, and the report says each once."""
    run_dir = _run_dir(tmp_path)
    html = build_report(run_dir).read_text()
    card = json.loads((run_dir / CAPACITY_JSON).read_text())["run"]
    answer = json.loads((run_dir / "answer.json").read_text())
    assert answer["capacity"]["held_per_s"] == card["held"]["offered_per_s"]
    assert answer["capacity"]["broke_per_s"] == card["broke"]["offered_per_s"]
    assert answer["capacity"]["held_per_s"] < answer["capacity"]["broke_per_s"]
    assert html.index('id="answer"') < html.index('id="capacity"')
    assert "inf ms" not in html and "people gave up >" not in html


def test_a_p99_of_a_step_with_too_few_people_does_not_set_the_capacity(tmp_path: Path) -> None:
    """Issue 22: the default sweep's step 7 (46 people, one gave up: p99 never) was read as where "login p99
    breaks first"; a p99 judges a step only with 100 people (rundir/figures.py), so the limiting objective is
    the one that broke on enough people."""
    rows = _step_rows()
    for row in rows:
        if row["status"] != "skipped":
            row["time_to_login_p99_ms"] = float("inf") if row["step"] >= 3 else 100.0  # from step 3: never
            row["arrivals"] = min(row.get("arrivals", 0), 60)  # never the 100 people a p99 needs
    card = capacity_card(load_run(_sweep_dir(tmp_path, rows)))
    assert card is not None and card.slo_requests is not None
    assert card.slo_requests.limiting_objective != "login p99"
    assert card.slo_requests.held_steps > 2


def test_refinement_steps_take_their_place_by_offered_load_and_the_answer_counts_them(tmp_path: Path) -> None:
    """Issue 22: refinement steps come after the planned ones in capacity.csv but between them in offered load:
    the range, the SLO capacity and the charts read them there, and the answer's confidence says how many ran and
    the width they left (here the budget of 1 step ran out before 5%)."""
    rows = _step_rows()
    measured = [row for row in rows if row["status"] != "skipped"]
    first_broke = next(k for k, row in enumerate(measured) if not row["slo_met"])
    held, broke = measured[first_broke - 1], measured[first_broke]
    middle = math.sqrt(held["offered_arrivals_per_s"] * broke["offered_arrivals_per_s"])
    refinement = {
        **held,
        "step": ALL_STEPS + 1,
        "phase": "refinement",
        "offered_arrivals_per_s": middle,
        "successful_requests_per_s": (held["successful_requests_per_s"] + broke["successful_requests_per_s"]) / 2,
    }
    run_dir = _sweep_dir(tmp_path, [*rows, refinement], refine_within=0.05, refine_steps=1)
    card = capacity_card(load_run(run_dir))
    assert card is not None and card.slo_requests is not None
    offered = list(card.measured_steps["offered_arrivals_per_s"])
    assert offered == sorted(offered) and middle in offered
    assert card.slo_requests.held_steps == first_broke + 1  # the refinement step held, below the first that broke
    build_report(run_dir)
    answer = json.loads((run_dir / "answer.json").read_text())
    assert answer["capacity"]["held_per_s"] == pytest.approx(middle)
    assert answer["capacity"]["broke_per_s"] == pytest.approx(broke["offered_arrivals_per_s"])
    width = (broke["offered_arrivals_per_s"] - middle) / middle
    assert f"1 refinement step near the break left it {width:.0%} wide" in answer["confidence"]
    assert "budget of 1 step ran out before 5%" in answer["confidence"]


# ---- the national morning: demand against the answer's capacity ---------------------------------------------


def _demand_chart(run_dir: Path) -> tuple[DemandAgainstCapacity | str, dict[str, Any], str]:
    """The demand-against-capacity figures of a run with a built report, its answer.json, and the chart's markup
    in report.html (its figure, or its one line of text)."""
    html = (run_dir / "report.html").read_text()
    answer = read_answer(run_dir)
    card = capacity_card(load_run(run_dir))
    assert answer is not None and card is not None
    found = re.search(r'<(figure|p class="collapsed") id="chart-demand-vs-capacity">.*?</(figure|p)>', html, re.S)
    assert found, "the run report has the demand-against-capacity chart"
    return demand_against_capacity(card, answer), json.loads((run_dir / "answer.json").read_text()), found.group(0)


def _offered_peak(run_dir: Path) -> float:
    """The highest offered load of any bin, national terms, as capacity.json states it."""
    return json.loads((run_dir / CAPACITY_JSON).read_text())["run"]["top"]["offered_per_s_national"]


def test_the_run_report_draws_the_national_demand_against_the_answers_range(tmp_path: Path) -> None:
    """Issue 22: the run report shows when in the morning demand passes capacity, with the range and what the
    instance count buys, from answer.json's figures."""
    run_dir = _run_dir(tmp_path)
    build_report(run_dir)
    figures, answer, markup = _demand_chart(run_dir)
    assert isinstance(figures, DemandAgainstCapacity) and markup.startswith("<figure")
    capacity, instances = answer["capacity"], answer["instances"]
    assert (figures.held_per_s, figures.broke_per_s) == (
        capacity["held_per_s_national"],
        capacity["broke_per_s_national"],
    )
    assert f"one instance: {rate_text(figures.held_per_s)}-{rate_text(figures.broke_per_s)}/s" in markup
    assert figures.instances == instances["needed"] and figures.headroom == instances["headroom"]
    carried = (figures.carried(figures.held_per_s), figures.carried(figures.broke_per_s))
    assert carried[0] >= instances["peak_per_s_national"], "the count carries the peak with its headroom"
    assert f"{rate_text(carried[0])}-{rate_text(carried[1])}/s" in markup
    assert float(figures.planned_per_s.max()) == pytest.approx(instances["peak_per_s_national"])
    assert float(figures.offered_per_s.max()) == pytest.approx(_offered_peak(run_dir))
    assert "national terms" in markup and "run terms" in markup


def test_a_real_run_that_broke_draws_the_morning_against_where_it_broke(smoke_pair: SmokeRuns) -> None:
    run_dir = smoke_pair.undersized
    assert_measured_the_platform(run_dir)
    figures, answer, markup = _demand_chart(run_dir)
    assert isinstance(figures, DemandAgainstCapacity), markup
    capacity, instances = answer["capacity"], answer["instances"]
    assert figures.broke_per_s == capacity["broke_per_s_national"]
    assert figures.held_per_s == capacity["held_per_s_national"]
    if figures.held_per_s is None:  # the undersized platform broke from its first minutes
        assert f"one instance: below {rate_text(figures.broke_per_s)}/s" in markup
    # The demand's peak is the one the answer sizes the instances for, and the run's is capacity.json's.
    peak = instances["peak_per_s_national"]
    assert float(figures.planned_per_s.max()) == pytest.approx(peak)
    assert f"peak {rate_text(peak)}/s at {instances['peak_at']}" in markup
    assert float(figures.offered_per_s.max()) == pytest.approx(_offered_peak(run_dir))
    assert figures.offered_per_s.max() > 0


def test_a_real_run_without_a_capacity_says_so_in_one_line(smoke_run: RunOutcome) -> None:
    assert_measured_the_platform(smoke_run.run_dir)
    figures, answer, markup = _demand_chart(smoke_run.run_dir)
    assert answer["capacity"]["broke_per_s_national"] is None, "the healthy smoke run held throughout"
    assert isinstance(figures, str) and "no capacity to draw" in figures
    assert markup.startswith('<p class="collapsed"') and "<svg" not in markup
