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

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from schoolsurge.engine.ledger import Ledger, write_histograms, write_sessions_csv
from schoolsurge.report import build_report, load_run
from schoolsurge.report.capacity.answer import capacity_card
from schoolsurge.report.capacity.charts import SWEEP_CHARTS
from schoolsurge.report.charts.base import svg
from schoolsurge.report.charts.latency import latency_against_offered
from schoolsurge.report.charts.load import failure_series, requests_and_failures
from schoolsurge.report.charts.people import pool_series
from schoolsurge.report.charts.sections import context, section_charts
from schoolsurge.report.run.funnel import ATTEMPTS, PEOPLE, login_funnel
from schoolsurge.report.series.axis import MAX_BINS, time_axis
from schoolsurge.report.series.latency import MIN_VALUES, percentiles_of
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
    login_percentile_value,
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


@pytest.mark.parametrize(
    ("span", "major", "minor"),
    [
        ((0.01, 1000), ["10⁻³", "10⁻²", "10⁻¹", "10⁰", "10¹", "10²", "10³", "10⁴"], []),
        (
            (0.3, 3),
            ["10⁻¹", "10⁰", "10¹"],
            ["2×10⁻¹", "3×10⁻¹", "4×10⁻¹", "6×10⁻¹", "2×10⁰", "3×10⁰", "4×10⁰", "6×10⁰"],
        ),
    ],
)
def test_log_axes_say_their_powers_in_plain_text(span: tuple[float, float], major: list[str], minor: list[str]) -> None:
    """A log axis is labelled as matplotlib labels it (10³, and 2×10⁻¹ between decades when it spans less than
    one), written as text: no mathtext to parse (a few tenths of a CPU second a report)."""
    figure = plt.figure()
    axes = figure.add_subplot()
    axes.plot([0, 1], span)
    axes.set_yscale("log")
    markup = svg(figure, "log", "a log axis")
    plt.close(figure)
    labels = {
        minor_ticks: [t.get_text() for t in axes.yaxis.get_ticklabels(minor=minor_ticks)]
        for minor_ticks in (False, True)
    }
    assert labels[False] == major and [label for label in labels[True] if label] == minor
    assert not any("$" in label for label in labels[False] + labels[True]), "mathtext labels"
    shown = {text for text in re.findall(r"<text[^>]*>([^<]*)<", markup) if "10" in text}
    assert "10⁰" in shown and shown <= {*major, *minor}, "the SVG holds the labels as text"


def test_every_chart_renders_to_valid_svg(smoke_run: RunOutcome) -> None:
    ctx = context(load_run(smoke_run.run_dir))
    charts = [chart for drawn in section_charts(ctx).values() for chart in drawn]
    expected = {
        "served",
        "served-per-group",
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
    # the login latency against the offered load needs two bins with enough people for a p95
    assert expected <= {chart.key for chart in charts} <= expected | {"login-vs-offered"}
    ids: list[str] = []
    for chart in charts:
        if chart.collapsed:  # every value 0, or too few for a percentile: a line of text instead
            assert not chart.svg and chart.collapsed.startswith(chart.title), chart.key
            continue
        root = ElementTree.fromstring(chart.svg)
        assert root.tag == SVG and root.get("viewBox"), chart.key
        assert root.find(".//{http://www.w3.org/2000/svg}path") is not None, chart.key
        ids += [element.get("id") for element in root.iter() if element.get("id")]
    assert len(ids) == len(set(ids)), "ids unique across the report's inline charts"
    time_charts = [
        chart
        for chart in charts
        if chart.key not in {"request-distribution", "login-cdf", "login-vs-offered", "served-per-group"}
    ]
    for chart in (chart for chart in time_charts if not chart.collapsed):
        assert "scenario clock (HH:MM)" in chart.svg and "SLO window 07:30-08:30" in chart.svg, chart.key


def test_the_report_is_one_file_with_every_section_and_no_network(smoke_run: RunOutcome, tmp_path: Path) -> None:
    html = build_report(_copy(smoke_run, tmp_path)).read_text(encoding="utf-8")
    sections = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    for section in SECTIONS:
        assert section in sections, section
    assert sections[:2] == ["The answer", "Capacity"]
    assert sections.index("Run") < sections.index("Arrivals") < sections.index("Login funnel")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no resource is fetched from a network"
    assert "<link" not in html and "<script" not in html
    drawn = html.count('<svg class="chart"') - html.count('<figure id="chart-platform-')  # + the platform's
    collapsed = html.count('<p class="collapsed" id="chart-') - html.count('<p class="collapsed" id="chart-platform-')
    # served per group and the national demand against capacity (the capacity section) included
    assert drawn + collapsed - html.count('id="chart-login-vs-offered"') == 14
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
    copy = _sweep_copy(smoke_run, tmp_path, ("measured", "measured", "measured"))
    html = build_report(copy).read_text(encoding="utf-8")
    sections = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]
    assert sections[:2] == ["The answer", "Capacity"]
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


# ---- what a chart draws ----------------------------------------------------------------------------------------


def test_percentiles_are_drawn_only_on_bins_with_enough_values(smoke_run: RunOutcome) -> None:
    """A p99 of a handful of requests is the slowest one: the line jumped from bin to bin. Each percentile is drawn
    on the bins holding at least its minimum (stated in the caption), request bins widened to hold them."""
    ctx = context(load_run(smoke_run.run_dir))
    assert ctx.request_axis.width >= ctx.axis.width
    for binned in (ctx.login_bins, ctx.request_bins_wide):
        totals = binned.totals
        drawn = binned.drawn_percentiles()
        exact = binned.percentiles()
        for p, minimum in MIN_VALUES.items():
            enough = totals >= minimum
            assert np.isnan(drawn[p][~enough]).all(), p
            assert drawn[p][enough] == pytest.approx(exact[p][enough]), p
    assert (~np.isnan(ctx.request_bins_wide.drawn_percentiles()[95])).any(), "enough requests for a p95"
    # The smoke_run run has bins with requests but too few for a p99: the old chart drew those.
    totals = ctx.request_bins.totals
    assert ((totals > 0) & (totals < MIN_VALUES[99])).any()
    charts = {chart.key: chart for drawn in section_charts(ctx).values() for chart in drawn}
    for key in ("login-latency", "request-latency"):
        chart = charts[key]
        assert "p50 10, p95 20, p99 100" in chart.caption or "no percentile to draw" in chart.collapsed, key


def test_a_chart_of_zeros_collapses_to_a_line_of_text(smoke_run: RunOutcome, tmp_path: Path) -> None:
    """Nobody late or dropped, no arrival waiting, no CPU sampled: the generator chart would be flat lines at 0."""
    copy = _copy(smoke_run, tmp_path, _steady(60), speed=120)
    ctx = context(load_run(copy))
    charts = {chart.key: chart for drawn in section_charts(ctx).values() for chart in drawn}
    assert charts["generator"].collapsed and not charts["generator"].svg
    assert "0 throughout" in charts["generator"].collapsed
    assert not charts["arrivals"].collapsed and charts["arrivals"].svg  # 3 people a second: drawn
    html = build_report(copy).read_text(encoding="utf-8")
    assert '<p class="collapsed" id="chart-generator">' in html
    assert '<figure id="chart-generator">' not in html


def test_login_latency_is_drawn_against_the_login_load_offered(smoke_run: RunOutcome, tmp_path: Path) -> None:
    """3 people a second, each logging in at the first attempt in 200 ms: every point at 3 attempts/s, 200 ms."""
    ctx = context(load_run(_copy(smoke_run, tmp_path, _steady(300), speed=120)))
    points = latency_against_offered(ctx)
    assert points is not None and len(points) >= 6
    assert points["offered_per_s"].to_numpy() == pytest.approx(3.0)
    assert points["p95_ms"].to_numpy() == pytest.approx(200, rel=0.01)
    totals = ctx.login_bins.totals[points.index.to_numpy()]
    assert (totals >= MIN_VALUES[95]).all()
    charts = {chart.key: chart for drawn in section_charts(ctx).values() for chart in drawn}
    assert charts["login-vs-offered"].svg and "login attempts offered" in charts["login-vs-offered"].svg


def _sweep_copy(smoke_run: RunOutcome, tmp_path: Path, statuses: tuple[str, ...]) -> Path:
    """The smoke run as a sweep of 5-second steps with these statuses."""
    copy = _copy(smoke_run, tmp_path)
    update_manifest(copy, kind="sweep")
    rows = []
    for step, status in enumerate(statuses, start=1):
        start = 5 * (step - 1)
        measured = status != "skipped"
        rows.append(
            {
                **dict.fromkeys(CAPACITY_COLUMNS, ""),
                "step": step,
                "status": status,
                "offered_arrivals_per_s": step,
                "start_s": start,
                "measured_from_s": start + 2,
                "end_s": start + 5,
                **(
                    {
                        "concurrency": 5 * step,
                        "logins_per_s": step,
                        "requests_per_s": 10 * step,
                        "successful_requests_per_s": 10 * step,
                        "error_ratio": 0,
                        "time_to_login_p95_ms": 100,
                        "slo_met": "true",
                    }
                    if measured
                    else {}
                ),
            }
        )
    pd.DataFrame(rows, columns=list(CAPACITY_COLUMNS)).to_csv(copy / CAPACITY_CSV, index=False)
    return copy


def test_a_sweeps_charts_end_where_its_last_step_ended(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _sweep_copy(smoke_run, tmp_path, ("measured", "stopped", "skipped"))
    data = load_run(copy)
    assert int(data.sessions["second"].max()) + 1 > 10, "the run's rows go on after the stopped step"
    axis = time_axis(data)
    assert axis.seconds == 10 and axis.edges[-1] == 10


def test_wide_tables_stay_inside_the_page(smoke_run: RunOutcome, tmp_path: Path) -> None:
    """The sweep's steps table (30 columns) widened the page past the screen: it scrolls inside it instead, and
    prints small."""
    copy = _sweep_copy(smoke_run, tmp_path, ("measured", "measured", "stopped"))
    html = build_report(copy).read_text(encoding="utf-8")
    style = html[html.index("<style>") : html.index("</style>")]
    assert "table.steps { display: block; overflow-x: auto; }" in style
    assert "table { max-width: 100%; }" in style
    steps_table = html[html.index("Steps of the sweep") :]
    assert steps_table[steps_table.index("<table") :].startswith('<table class="steps">')


def test_the_sweeps_legends_sit_above_their_charts_not_over_the_steps(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _sweep_copy(smoke_run, tmp_path, ("measured", "measured", "measured", "stopped"))
    card = capacity_card(load_run(copy))
    assert card is not None
    drawn = 0
    for _title, draw in SWEEP_CHARTS:
        figure = draw(card)
        figure.canvas.draw()
        for ax in figure.axes:
            box = ax.get_legend()
            if box is None:
                continue
            drawn += 1
            assert box.get_window_extent().y0 >= ax.get_window_extent().y1 - 1, _title
        plt.close(figure)
    assert drawn >= 2


def test_time_to_log_in_over_time_counts_those_who_never_logged_in(smoke_run: RunOutcome, tmp_path: Path) -> None:
    """Issue 22: the chart drew time to log in over the people who logged in only, while the SLOs count those who
    gave up as never logged in: a minute where half gave up showed the fast half's p95. It now reads the one
    definition (rundir/figures.py) bin by bin, marks a percentile never reached, and draws who never logged in."""
    ledger = _steady(60)
    for second in range(20, 40):  # as many again arrive and give up: half of them never log in
        ledger.count(second, Counter.SCHEDULED, 3)
        ledger.count(second, Counter.STARTED, 3)
        ledger.count(second, Counter.ABANDONED, 3)
    ctx = context(load_run(_copy(smoke_run, tmp_path, ledger, speed=120)))
    axis, drawn = ctx.login_axis, ctx.login_percentiles
    never = ctx.login_axis.sum(ctx.per_second[Counter.ABANDONED] + ctx.per_second[Counter.UNFINISHED])
    for index in range(axis.count):
        seconds = range(index * axis.width, min((index + 1) * axis.width, axis.seconds))
        succeeded = merged(ctx.data.histograms[s] for s in seconds if s in ctx.data.histograms)
        for p in (50, 95, 99):
            expected = login_percentile_value(succeeded, int(never[index]), p)
            tried = succeeded.get_total_count() + never[index]
            if tried >= MIN_VALUES[p]:
                assert drawn[p][index] == expected, (p, index)
            else:
                assert np.isnan(drawn[p][index]), (p, index)
    giving_up = [index for index in range(axis.count) if index * axis.width >= 20 and (index + 1) * axis.width <= 40]
    assert giving_up and all(np.isinf(drawn[95][index]) for index in giving_up), "p95 never reached there"
    assert all(drawn[50][index] <= 200 for index in giving_up), "half logged in, fast: the p50 is reached"
    charts = {chart.key: chart for drawn_ in section_charts(ctx).values() for chart in drawn_}
    login = charts["login-latency"]
    assert "p95 never reached" in login.svg and "never logged in, % of those who tried" in login.svg
    assert "count as never logged in" in login.caption and "are not in it" not in login.caption
    points = latency_against_offered(ctx)
    assert points is not None and np.isinf(points["p95_ms"]).any(), "the bins where it was never reached are kept"
