"""The report's charts and tables, on real run directories: a smoke run of the embedded platform, and copies of it
whose sessions.csv and histograms are written by the engine's own Ledger with a known shape (steady arrivals, a
missing second, failures of every kind, a wide latency spread)."""

from __future__ import annotations

import json
import math
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from schoolsurge.engine.ledger import Ledger, write_histograms, write_sessions_csv
from schoolsurge.report import build_report, load_run
from schoolsurge.report.charts.load import failure_series, requests_and_failures
from schoolsurge.report.charts.people import pool_series
from schoolsurge.report.charts.sections import context, section_charts
from schoolsurge.report.run.funnel import ATTEMPTS, PEOPLE, login_funnel
from schoolsurge.report.series.axis import MAX_BINS
from schoolsurge.report.series.latency import percentiles_of
from schoolsurge.rundir import (
    AGGREGATED,
    BOT_STEP_PREFIX,
    CAPACITY_COLUMNS,
    CAPACITY_CSV,
    FAILURE_COUNTERS,
    FAILURES_CSV,
    HISTOGRAMS,
    LOGIN_FLOW_TYPE,
    SESSIONS_CSV,
    STATS_CSV,
    TIMELINE,
    Counter,
    Gauge,
    merged,
    read_histograms,
    update_manifest,
    write_json,
)
from schoolsurge.runner import RunOutcome

SVG = "{http://www.w3.org/2000/svg}svg"
SECTIONS = (
    "Capacity",
    "Run",
    "Who got in",
    "Service-level objectives",
    "Arrivals",
    "Concurrency",
    "Requests and failures",
    "Latency",
    "Login funnel",
    "Retries",
    "Generator and platform health",
    "Summary by step",
    "Failures",
    "Versions",
)


def _copy(smoke_run: RunOutcome, tmp_path: Path, ledger: Ledger | None = None, speed: float | None = None) -> Path:
    """The smoke run directory copied, with the ledger's sessions.csv and histograms, and the speed, if given."""
    copy = tmp_path / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, copy)
    if ledger is not None:
        write_sessions_csv(ledger, copy / SESSIONS_CSV)
        write_histograms(ledger, copy / HISTOGRAMS)
    if speed is not None:
        timeline = json.loads((copy / TIMELINE).read_text())
        write_json(copy / TIMELINE, {**timeline, "speed": speed})
        update_manifest(copy, speed=speed)
    return copy


def _steady(seconds: int, per_second: int = 3) -> Ledger:
    ledger = Ledger()
    for second in range(seconds):
        for counter in (Counter.SCHEDULED, Counter.STARTED, Counter.LOGIN_ATTEMPTS, Counter.LOGINS_SUCCEEDED):
            ledger.count(second, counter, per_second)
        ledger.sample(second, Gauge.POOL_SIZE, 20)
        ledger.sample(second, Gauge.ACTIVE_SESSIONS, 10)
        for _ in range(per_second):
            ledger.time_to_login(second, 200)
            ledger.request(second, 30, None)
    return ledger


# ---- bins ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [1, 36, 72, 120, 240])
def test_arrival_bins_never_alias(smoke_run: RunOutcome, tmp_path: Path, speed: float) -> None:
    data = load_run(_copy(smoke_run, tmp_path, _steady(300), speed))
    ctx = context(data)
    rate = ctx.axis.per_scenario_minute(ctx.per_second[Counter.SCHEDULED])
    # 3 people every run second is 3 x 60 / speed people per scenario minute, in every bin, the last one included.
    assert rate == pytest.approx(np.full(ctx.axis.count, 3 * 60 / speed))
    assert ctx.axis.width == max(1, round(60 / speed), math.ceil(300 / MAX_BINS)) and ctx.axis.count <= MAX_BINS
    if speed == 36:  # binned by scenario minute, the same arrivals alternate 1 and 2 run seconds a bin
        naive = data.sessions.groupby(data.sessions["clock_s"] // 60)["scheduled"].sum()
        assert naive.max() == 2 * naive.min()


def test_a_long_run_has_at_most_max_bins_of_whole_run_seconds(smoke_run: RunOutcome, tmp_path: Path) -> None:
    seconds = 3 * 3600
    data = load_run(_copy(smoke_run, tmp_path, _steady(seconds, 1), speed=1))
    axis = context(data).axis
    assert axis.count <= MAX_BINS and axis.width == int(axis.width) and axis.width >= 60
    assert axis.seconds_in.sum() == seconds


# ---- the funnel ----------------------------------------------------------------------------------------------


def _stats_successes(stats: pd.DataFrame, name: str) -> int:
    row = stats[(stats["Name"] == name) & (stats["Type"] != LOGIN_FLOW_TYPE)]
    return int(row["Request Count"].sum() - row["Failure Count"].sum())


def test_funnel_counts_match_sessions_and_stats(smoke_run: RunOutcome) -> None:
    data = load_run(smoke_run.run_dir)
    stages = {stage.name: stage for stage in login_funnel(data)}
    totals = data.sessions.sum(numeric_only=True)
    arrived = stages["arrived (due to log in)"]
    form, accepted = stages["login form served"], stages["credentials accepted"]
    validated, first_page = stages["ticket validated"], stages["first page (dashboard)"]
    logged_in = stages["logged in"]
    assert arrived.count == totals[Counter.SCHEDULED] and arrived.unit == PEOPLE
    assert stages["started (an agent took them)"].count == totals[Counter.STARTED]
    assert stages["login attempts"].count == totals[Counter.LOGIN_ATTEMPTS]
    assert form.count == _stats_successes(data.stats, "sso: login form") and form.unit == ATTEMPTS
    assert accepted.count == _stats_successes(data.stats, "sso: submit credentials")
    assert validated.count == _stats_successes(data.stats, "sso: ticket callback")
    assert logged_in.count == totals[Counter.LOGINS_SUCCEEDED] == validated.count
    assert stages["virtual class joined"].count == totals[Counter.VIRTUAL_CLASS_JOINS] > 0
    # A healthy run: nobody retried, so attempts are people and the whole chain narrows.
    assert arrived.count >= form.count >= accepted.count >= validated.count >= first_page.count > 0
    assert first_page.count <= logged_in.count


def test_funnel_loses_at_the_failing_stage_and_says_why(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _copy(smoke_run, tmp_path)
    stats = pd.read_csv(copy / STATS_CSV)
    submit = stats["Name"] == "sso: submit credentials"
    stats.loc[submit, "Failure Count"] = 10
    stats.to_csv(copy / STATS_CSV, index=False)
    error = "CatchResponseError('HTTP 503, expected a redirect with a service ticket')"
    failures = pd.DataFrame(
        [["POST", "sso: submit credentials", error, 10], ["GET", "dashboard", "HTTP 500", 3]],
        columns=["Method", "Name", "Error", "Occurrences"],
    )
    failures.to_csv(copy / FAILURES_CSV, index=False)
    stages = {stage.name: stage for stage in login_funnel(load_run(copy))}
    accepted = stages["credentials accepted"]
    assert accepted.lost == 10 and accepted.of == stages["login form served"].count
    assert accepted.why == [(error, 10)]
    assert stages["login form served"].lost == 0 and not stages["login form served"].why
    assert stages["first page (dashboard)"].why == [("a request failed (asked again): HTTP 500", 3)]


# ---- requests, failures, latency, the pool ---------------------------------------------------------------------


def test_failure_kinds_sum_to_the_failures(smoke_run: RunOutcome, tmp_path: Path) -> None:
    ledger, expected = Ledger(), dict.fromkeys(FAILURE_COUNTERS, 0)
    for second in range(120):
        ledger.sample(second, Gauge.POOL_SIZE, 5)
        for request in range(10):
            kind = FAILURE_COUNTERS[(second + request) % len(FAILURE_COUNTERS)] if request < 4 else None
            ledger.request(second, 40, kind)
            if kind is not None:
                expected[kind] += 1
    ctx = context(load_run(_copy(smoke_run, tmp_path, ledger, speed=36)))
    series = failure_series(ctx)
    for kind, total in expected.items():
        assert (series[kind] * ctx.axis.seconds_in).sum() == pytest.approx(total) and total > 0, kind
    failed = sum((s * ctx.axis.seconds_in).sum() for s in series.values())
    assert failed == pytest.approx(sum(expected.values())) and failed == 4 * 120
    assert ctx.per_second[Counter.REQUESTS].sum() == 10 * 120
    chart = requests_and_failures(ctx)
    assert chart is not None and "503 refused" in chart.svg and "other (4xx, wrong content)" in chart.svg


def test_the_engine_counts_every_request_locust_counts(smoke_run: RunOutcome) -> None:
    data = load_run(smoke_run.run_dir)
    people = data.stats[data.is_request_row(data.stats)]
    assert data.sessions[Counter.REQUESTS].sum() == people["Request Count"].sum()
    assert data.sessions[list(FAILURE_COUNTERS)].to_numpy().sum() == people["Failure Count"].sum()


def _spread_ledger(seconds: int) -> Ledger:
    rng = np.random.default_rng(2021)
    ledger = Ledger()
    for second in range(seconds):
        ledger.sample(second, Gauge.POOL_SIZE, 5)
        for value in rng.lognormal(6, 1.5, size=int(rng.integers(0, 12))):
            ledger.time_to_login(second, value)
            ledger.request(second, value / 10, None)
    return ledger


def test_histogram_percentiles_are_the_merged_histograms(smoke_run: RunOutcome, tmp_path: Path) -> None:
    for run_dir in (smoke_run.run_dir, _copy(smoke_run, tmp_path, _spread_ledger(500), speed=36)):
        ctx = context(load_run(run_dir))
        for binned, axis, kind in (
            (ctx.login_bins, ctx.login_axis, "time_to_login"),
            (ctx.request_bins, ctx.axis, "request_latency"),
        ):
            histograms = read_histograms(run_dir / HISTOGRAMS, kind)
            whole = merged(histograms.values())
            for p in (50, 95, 99, 99.9):
                assert binned.percentiles((p,))[p].size == axis.count
                assert percentiles_of(binned.whole(), binned.values, (p,))[p][0] == whole.get_value_at_percentile(p)
            p95 = binned.percentiles((95,))[95]
            for index in range(axis.count):
                in_bin = merged(h for s, h in histograms.items() if s // axis.width == index)
                expected = in_bin.get_value_at_percentile(95) if in_bin.get_total_count() else None
                assert (np.isnan(p95[index]) and expected is None) or p95[index] == expected, (kind, index)


def test_the_pool_never_drops_to_zero_for_a_missing_sample(smoke_run: RunOutcome, tmp_path: Path) -> None:
    ledger = Ledger()
    for second in range(60):
        if second != 30:  # nobody sampled second 30
            ledger.sample(second, Gauge.POOL_SIZE, 40 if second != 45 else 20)  # 45: one of two processes missing
            ledger.sample(second, Gauge.ACTIVE_SESSIONS, 25)
        ledger.count(second, Counter.SCHEDULED)
    ledger.count(60, Counter.LOGIN_RETRIES)  # the last row has counters only
    copy = _copy(smoke_run, tmp_path, ledger, speed=120)
    written = pd.read_csv(copy / SESSIONS_CSV).set_index("second")[Gauge.POOL_SIZE]
    assert written[30] == 0 and written[60] == 0, "the file has the zeros the chart must not draw"
    ctx = context(load_run(copy))
    assert ctx.axis.width == 1
    pool = pool_series(ctx)
    assert np.nanmin(pool) == 40 and not (pool == 0).any()
    assert np.isnan(pool[-1])  # after the last sample: no value, not zero
    sessions = ctx.axis.mean(ctx.gauges[Gauge.ACTIVE_SESSIONS])
    assert np.nanmin(sessions) == 25


# ---- rendering ---------------------------------------------------------------------------------------------


def test_every_chart_renders_to_valid_svg(smoke_run: RunOutcome) -> None:
    ctx = context(load_run(smoke_run.run_dir))
    charts = [chart for drawn in section_charts(ctx).values() for chart in drawn]
    expected = {
        "served",
        "arrivals",
        "arrivals-cumulative",
        "concurrency",
        "requests",
        "login-latency",
        "request-latency",
        "steps-latency",
        "request-distribution",
        "login-cdf",
        "retries",
        "generator",
    }
    assert {chart.key for chart in charts} == expected
    ids: list[str] = []
    for chart in charts:
        root = ElementTree.fromstring(chart.svg)
        assert root.tag == SVG and root.get("viewBox"), chart.key
        assert root.find(".//{http://www.w3.org/2000/svg}path") is not None, chart.key
        ids += [element.get("id") for element in root.iter() if element.get("id")]
    assert len(ids) == len(set(ids)), "ids unique across the report's inline charts"
    time_charts = [chart for chart in charts if chart.key not in {"request-distribution", "login-cdf"}]
    for chart in time_charts:
        assert "scenario clock (HH:MM)" in chart.svg and "SLO window 07:30-08:30" in chart.svg, chart.key


def test_the_report_is_one_file_with_every_section_and_no_network(smoke_run: RunOutcome, tmp_path: Path) -> None:
    html = build_report(_copy(smoke_run, tmp_path)).read_text(encoding="utf-8")
    sections = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    for section in SECTIONS:
        assert section in sections, section
    assert sections[0] == "Capacity"
    assert sections.index("Run") < sections.index("Arrivals") < sections.index("Login funnel")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no resource is fetched from a network"
    assert "<link" not in html and "<script" not in html
    assert html.count('<svg class="chart"') - html.count('<figure id="chart-platform-') == 12  # + the platform's
    assert "@media print" in html and "break-inside: avoid" in html
    for column in ("p50", "p90", "p95", "p99", "p99.9", "max"):
        assert f"<th>{column}</th>" in html
    assert "reconnection bubble" in html and "amplification (attempts per person)" in html


def test_a_generator_bound_run_says_so_at_the_top(smoke_run: RunOutcome, tmp_path: Path) -> None:
    ledger = _steady(60)
    ledger.count(10, Counter.LATE, 30)
    html = build_report(_copy(smoke_run, tmp_path, ledger, speed=120)).read_text(encoding="utf-8")
    warning = html.index("this run measured the load generator, not the platform")
    assert warning < html.index('<h2 id="capacity">') and warning < html.index("<svg")


def test_a_sweep_is_drawn_in_run_seconds_without_the_morning(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _copy(smoke_run, tmp_path)
    update_manifest(copy, kind="sweep")
    rows = []
    for step, start in enumerate((0, 5, 10), start=1):
        rows.append(
            {
                **dict.fromkeys(CAPACITY_COLUMNS, ""),
                "step": step,
                "status": "measured",
                "start_s": start,
                "measured_from_s": start + 2,
                "end_s": start + 5,
                "concurrency": 5 * step,
                "logins_per_s": step,
                "requests_per_s": 10 * step,
                "successful_requests_per_s": 10 * step,
                "error_ratio": 0,
                "time_to_login_p95_ms": 100,
                "slo_met": "true",
            }
        )
    pd.DataFrame(rows, columns=list(CAPACITY_COLUMNS)).to_csv(copy / CAPACITY_CSV, index=False)
    html = build_report(copy).read_text(encoding="utf-8")
    sections = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    assert sections[0] == "Capacity"
    assert "Who got in" not in sections and not any(s.startswith("Run against plan") for s in sections)
    charts = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    # The capacity section's national chart is the morning's demand, on the scenario clock by design.
    charts = [chart for chart in charts if 'aria-label="The national morning' not in chart]
    assert charts and all("scenario clock" not in chart and "SLO window" not in chart for chart in charts)
    assert any("run time (s)" in chart and "step 2" in chart for chart in charts)


def test_bots_are_counted_apart(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _copy(smoke_run, tmp_path)
    stats = pd.read_csv(copy / STATS_CSV)
    bot = stats[stats["Name"] == "sso: submit credentials"].assign(Name=f"{BOT_STEP_PREFIX}sso: submit credentials")
    bot["Request Count"], bot["Failure Count"] = 50, 48
    total = stats["Name"] == AGGREGATED
    pd.concat([stats[~total], bot, stats[total]]).to_csv(copy / STATS_CSV, index=False)
    html = build_report(copy).read_text(encoding="utf-8")
    assert "Bots (counted apart from people)" in html
    assert f'{BOT_STEP_PREFIX}sso: submit credentials (requests / failed)</th><td class="num">50 / 48' in html
    steps = html[html.index('<h2 id="steps">') : html.index('<h2 id="failures">')]
    assert steps.index(">people<") < steps.index(">bots<")
