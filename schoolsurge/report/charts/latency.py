"""Latency charts: percentiles over time merged per bin from the engine's HdrHistograms (time to log in by arrival,
people's requests by completion), per step from Locust's history where only it has them, the distribution of
request latency and the time-to-log-in CDF against the login objectives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schoolsurge.report.charts.base import Chart, Context, figure, legend, steps, time_axes
from schoolsurge.report.series.axis import TimeAxis
from schoolsurge.report.series.latency import MIN_VALUES, Binned, cdf, distribution, minimum_text
from schoolsurge.report.series.retries import retry_series

PERCENTILE_STYLE = {50: "tab:blue", 95: "tab:orange", 99: "tab:red"}
MAX_STEPS = 8
WIDE_RANGE = 20  # a load axis spanning more than this ratio is drawn on a log scale


def _objectives(ctx: Context) -> list[tuple[int, float]]:
    scenario = ctx.data.scenario
    if scenario is None:
        return []
    slo = scenario.slo
    given = ((50, slo.login_p50_ms), (95, slo.login_p95_ms), (99, slo.login_p99_ms))
    return [(p, float(v)) for p, v in given if v is not None]


def _over_time(
    ctx: Context, axis: TimeAxis, binned: Binned, key: str, title: str, caption: str, slo: bool
) -> Chart | None:
    if not binned.totals.any():
        return None
    drawn = binned.drawn_percentiles()
    if all(np.isnan(values).all() for values in drawn.values()):
        fewest = min(MIN_VALUES.values())
        text = f"{title}: fewer than {fewest} values in every bin ({axis.bin_label}), no percentile to draw over time."
        return Chart(key, title, caption, "", text)
    fig, (ax,) = figure()
    for p, values in drawn.items():
        steps(ax, axis.edges, values, color=PERCENTILE_STYLE[p], label=f"p{p}")
    if slo:
        for p, threshold in _objectives(ctx):
            ax.axhline(threshold, color=PERCENTILE_STYLE[p], linestyle="--", linewidth=0.8, label=f"p{p} objective")
    time_axes(ax, axis)
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    legend(ax)
    return Chart.drawn(fig, key, title, caption)


def login_over_time(ctx: Context) -> Chart | None:
    """Time to log in over everyone who tried, bin by bin, and the share who never logged in: one definition with
    the SLOs (rundir/figures.py), so a bin where too many gave up shows "never", not the few fast ones who got in."""
    axis, never = ctx.login_axis, ctx.login_never
    tried = ctx.login_bins.totals + never
    if not tried.any():
        return None
    title = "Time to log in from the intended arrival: p50, p95, p99, and who never logged in"
    caption = (
        "Over everyone due in each bin who tried to log in, by their intended arrival time (cohort), as the SLOs "
        "judge it: those who gave up, or were still logging in when the run ended, count as never logged in. A "
        "percentile their share fills is never reached (▲ at the top; the bottom panel shows that share against "
        f"each percentile's tail). From the engine's time-to-login histograms merged per bin ({axis.bin_label}); "
        f"it includes the generator's delay, the platform's queueing and every retry; {minimum_text()} (people)."
    )
    drawn = ctx.login_percentiles
    if all(np.isnan(values).all() for values in drawn.values()):
        fewest = min(MIN_VALUES.values())
        text = f"{title}: fewer than {fewest} people in every bin ({axis.bin_label}), no percentile to draw over time."
        return Chart("login-latency", title, caption, "", text)
    fig, (top, bottom) = figure(2, height=5.0)
    centres = (axis.edges[:-1] + axis.edges[1:]) / 2
    for p, values in drawn.items():
        steps(top, axis.edges, np.where(np.isinf(values), np.nan, values), color=PERCENTILE_STYLE[p], label=f"p{p}")
        never_reached = np.isinf(values)
        if never_reached.any():
            top.plot(centres[never_reached], np.full(never_reached.sum(), 0.97), linestyle="none", marker="^",
                     color=PERCENTILE_STYLE[p], transform=top.get_xaxis_transform(), clip_on=False,
                     label=f"p{p} never reached")  # fmt: skip
    for p, threshold in _objectives(ctx):
        top.axhline(threshold, color=PERCENTILE_STYLE[p], linestyle="--", linewidth=0.8, label=f"p{p} objective")
    time_axes(top, axis, label=False)
    top.set_yscale("log")
    top.set_ylabel("ms (log)")
    legend(top)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tried > 0, 100 * never / tried, np.nan)
    steps(bottom, axis.edges, share, color="tab:purple", label="never logged in, % of those who tried")
    for p, _ in _objectives(ctx):
        bottom.axhline(100 - p, color=PERCENTILE_STYLE[p], linestyle=":", linewidth=0.8,
                       label=f"above {100 - p}%: p{p} never reached")  # fmt: skip
    time_axes(bottom, axis)
    bottom.set_ylim(-2, 102)
    bottom.set_ylabel("%")
    legend(bottom)
    return Chart.drawn(fig, "login-latency", title, caption)


def requests_over_time(ctx: Context) -> Chart | None:
    title = "People's request latency: p50, p95, p99"
    caption = (
        "Every HTTP request of people (bots and the login flow entry left out), failed or not, by the second it "
        f"completed, from the engine's request-latency histograms merged per bin ({ctx.request_axis.bin_label}); "
        f"{minimum_text()}."
    )
    return _over_time(ctx, ctx.request_axis, ctx.request_bins_wide, "request-latency", title, caption, slo=False)


def latency_against_offered(ctx: Context) -> pd.DataFrame | None:
    """Per bin of the login axis that holds enough people for its percentiles: the login attempts offered per run
    second (first attempts and retries, event time) and the time to log in of the people due in it (p50, p95,
    over everyone who tried: inf where those who never logged in fill the percentile's tail)."""
    if ctx.data.sessions is None or not ctx.login_bins.totals.any():
        return None
    axis = ctx.login_axis
    attempts = retry_series(ctx.data.sessions, axis)
    drawn = ctx.login_percentiles  # over everyone who tried: inf where those who never logged in fill the tail
    frame = pd.DataFrame(
        {
            "offered_per_s": attempts.first_attempts_per_s + attempts.login_retries_per_s,
            "p50_ms": drawn[50],
            "p95_ms": drawn[95],
        }
    )
    frame = frame[frame["p95_ms"].notna()]
    return frame if len(frame) else None


def latency_vs_offered(ctx: Context) -> Chart | None:
    """Time to log in against the login load offered, bin by bin: where it leaves its floor is the load the
    platform stops absorbing; whether that is the platform or the people's retries, the logins chart says."""
    points = latency_against_offered(ctx)
    if points is None or len(points) < 2:
        return None
    fig, (ax,) = figure()
    for p, size, marker in ((95, 18, "o"), (50, 12, "s")):
        values = points[f"p{p}_ms"]
        reached = np.isfinite(values)
        ax.scatter(points["offered_per_s"][reached], values[reached], color=PERCENTILE_STYLE[p], s=size,
                   marker=marker, label=f"p{p}")  # fmt: skip
        if np.isinf(values).any():  # too many never logged in for this percentile: at the top
            ax.scatter(points["offered_per_s"][np.isinf(values)], np.full(int(np.isinf(values).sum()), 0.97),
                       color=PERCENTILE_STYLE[p], s=size, marker="^", transform=ax.get_xaxis_transform(),
                       clip_on=False, label=f"p{p} never reached")  # fmt: skip
    for p, threshold in _objectives(ctx):
        if p in (50, 95):
            ax.axhline(threshold, color=PERCENTILE_STYLE[p], linestyle="--", linewidth=0.8, label=f"p{p} objective")
    ax.set_yscale("log")
    offered = points["offered_per_s"][points["offered_per_s"] > 0]
    if len(offered) and offered.max() > WIDE_RANGE * offered.min():  # retries spread the load over decades
        ax.set_xscale("log")
    else:
        ax.set_xlim(left=0)
    ax.set_xlabel("login attempts offered per run second (first attempts and retries, run terms)")
    ax.set_ylabel("time to log in, ms (log)")
    legend(ax)
    title = "Time to log in against the login load offered"
    caption = (
        f"One point per bin ({ctx.login_axis.bin_label}) holding enough people for its percentiles "
        f"({minimum_text()}): the login attempts made in it (event time) and the time to log in of the people due "
        "in it (cohort), over everyone who tried: those who never logged in count as never, as the SLOs count "
        "them (▲ at the top: a percentile they fill). In national terms, divide the load by the load fraction."
    )
    return Chart.drawn(fig, "login-vs-offered", title, caption)


def _history_x(ctx: Context, rows: pd.DataFrame) -> pd.Series:
    data = ctx.data
    if ctx.axis.clock or data.test_start_unix is None:
        return rows["clock_s"]
    return rows["Timestamp"] - data.test_start_unix


def steps_over_time(ctx: Context) -> Chart | None:
    """p95 per step from Locust's history: the engine's histograms do not split requests by step."""
    data = ctx.data
    history = data.history
    if not len(history):
        return None
    rows = history[data.is_request_row(history)]
    rows = rows[pd.notna(rows["95%"]) & (rows["95%"] > 0)]
    if rows.empty:
        return None
    busiest = rows.groupby("Name")["Total Request Count"].max().sort_values(ascending=False).head(MAX_STEPS).index
    fig, (ax,) = figure(height=3.8)
    colours = iter(matplotlib_colours())
    for name in busiest:
        step = rows[rows["Name"] == name]
        ax.plot(_history_x(ctx, step), step["95%"], color=next(colours), linewidth=1, label=str(name))
    time_axes(ax, ctx.axis)
    ax.set_yscale("log")
    ax.set_ylabel("p95, ms (log)")
    legend(ax)
    title = "Latency per step, p95 (Locust's 10-second windows)"
    caption = (
        "Per request name, from Locust's statistics history: each point is Locust's percentile over its own recent "
        f"window, not the engine's histograms (which do not split by step). The {len(busiest)} busiest steps."
    )
    return Chart.drawn(fig, "steps-latency", title, caption)


def matplotlib_colours() -> list[str]:
    return [f"tab:{c}" for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan")]


def request_distribution(ctx: Context) -> Chart | None:
    binned = ctx.request_bins
    shown = distribution(binned.whole()[0], binned.values)
    if shown is None:
        return None
    fig, (ax,) = figure()
    ax.stairs(100 * shown.shares, shown.edges, fill=True, color="tab:blue", alpha=0.6)
    colours = ("tab:green", "tab:orange", "tab:red", "black")
    for (p, value), colour in zip(shown.percentiles.items(), colours, strict=True):
        ax.axvline(value, color=colour, linestyle="--", linewidth=0.9, label=f"p{p:g} {value:,.0f} ms")
    ax.set_xscale("log")
    ax.set_xlabel("request latency, ms (log)")
    ax.set_ylabel("% of requests")
    legend(ax)
    title = "Response-time distribution of people's requests"
    caption = f"All {shown.total:,} people's requests of the run, failed or not, from the merged histograms."
    return Chart.drawn(fig, "request-distribution", title, caption)


def login_cdf(ctx: Context) -> Chart | None:
    binned = ctx.login_bins
    counts = binned.whole()[0]
    logged_in = int(counts.sum())
    if not logged_in:
        return None
    values, share = cdf(counts, binned.values)
    gave_up = int(ctx.login_never.sum())  # gave up, or still logging in at the end: never logged in
    fig, (ax,) = figure(height=3.6)
    ax.step(values, 100 * share, where="post", color="tab:blue", label=f"of the {logged_in:,} who logged in")
    if gave_up:
        tried = logged_in + gave_up
        ax.step(
            values,
            100 * share * logged_in / tried,
            where="post",
            color="tab:purple",
            label=f"of the {tried:,} who tried ({gave_up:,} gave up or unfinished: never)",
        )
    for p, threshold in _objectives(ctx):
        colour = {50: "tab:green", 95: "tab:orange", 99: "tab:red"}[p]
        ax.axvline(threshold, color=colour, linestyle="--", linewidth=0.9, label=f"p{p} objective {threshold:,.0f} ms")
        ax.axhline(p, color=colour, linestyle=":", linewidth=0.7)
    ax.set_xscale("log")
    ax.set_ylim(0, 101)
    ax.set_xlabel("time to log in from the intended arrival, ms (log)")
    ax.set_ylabel("% logged in within")
    legend(ax)
    title = "Time to log in: cumulative distribution against the objectives"
    caption = (
        "Whole run. An objective holds when its curve crosses its percentile's dotted line left of its dashed "
        "threshold; the verdicts above judge the SLO window only."
    )
    return Chart.drawn(fig, "login-cdf", title, caption)
