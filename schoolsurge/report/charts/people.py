"""Charts of people, from the engine's sessions.csv: arrivals (rate and cumulative), who got in (over time, and per
scenario group from groups.csv), and how many were in a session and in a virtual class against the plan, with the
agents in the pool."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schoolsurge.models.replay import Replay
from schoolsurge.report.charts.base import Chart, Context, figure, legend, steps, time_axes
from schoolsurge.report.outcome.against_plan import national_per_run_second
from schoolsurge.report.outcome.served import served_by_group
from schoolsurge.report.series.axis import time_axis
from schoolsurge.rundir import Counter, Gauge

ARRIVALS = (
    (Counter.SCHEDULED, "scheduled", "tab:gray"),
    (Counter.STARTED, "started", "tab:blue"),
    (Counter.LATE, "started late", "tab:orange"),
    (Counter.DROPPED, "dropped (never started)", "tab:red"),
    (Counter.ABANDONED, "gave up logging in", "tab:purple"),
)


def arrivals_rate(ctx: Context) -> Chart | None:
    if ctx.data.sessions is None:
        return None
    axis = ctx.axis
    fig, (ax,) = figure()
    for column, label, colour in ARRIVALS:
        rate = axis.per_scenario_minute(ctx.per_second[column])
        if column in (Counter.SCHEDULED, Counter.STARTED) or rate.any():
            ax.stairs(rate, axis.edges, color=colour, label=label, linewidth=1.4 if column == Counter.STARTED else 1)
    time_axes(ax, axis)
    ax.set_ylabel(f"people {axis.rate_label}")
    ax.set_ylim(bottom=0)
    legend(ax)
    title = f"Arrivals {axis.rate_label}: scheduled, started, late, dropped, gave up"
    caption = (
        f"People by their intended arrival time (cohort), in bins of {axis.bin_label}, so no bin is emptier than "
        "its neighbours by rounding. Gave up: people due then who gave up logging in."
    )
    return Chart.drawn(fig, "arrivals", title, caption)


def arrivals_cumulative(ctx: Context) -> Chart | None:
    if ctx.data.sessions is None:
        return None
    axis = ctx.axis
    fig, (ax,) = figure()
    for column, label, colour in (
        (Counter.SCHEDULED, "scheduled", "tab:gray"),
        (Counter.STARTED, "started", "tab:blue"),
        (Counter.LOGINS_SUCCEEDED, "logged in", "tab:green"),
        (Counter.ABANDONED, "gave up logging in", "tab:purple"),
        (Counter.DROPPED, "dropped", "tab:red"),
    ):
        total = np.cumsum(axis.sum(ctx.per_second[column]))
        if column in (Counter.SCHEDULED, Counter.STARTED, Counter.LOGINS_SUCCEEDED) or total[-1]:
            ax.plot(axis.edges[1:], total, color=colour, label=f"{label} ({int(total[-1]):,})")
    time_axes(ax, axis)
    ax.set_ylabel("people (cumulative)")
    ax.set_ylim(bottom=0)
    legend(ax)
    title = "Arrivals, cumulative: scheduled, started, logged in, gave up, dropped"
    caption = "Counted by intended arrival time (cohort): a person due at 08:00 who logged in at 08:20 counts at 08:00."
    return Chart.drawn(fig, "arrivals-cumulative", title, caption)


def served(ctx: Context) -> Chart | None:
    """Of the people due in each bin (about 5 scenario minutes), the share who got in, and those who gave up."""
    if ctx.data.sessions is None:
        return None
    axis = time_axis(ctx.data, target_scenario_s=300)
    per_second = ctx.per_second
    tried = axis.sum(per_second[Counter.STARTED])
    tried = np.where(tried > 0, tried, np.nan)
    fig, (ax,) = figure()
    for column, label, colour in (
        (Counter.LOGINS_SUCCEEDED, "got in (%)", "tab:green"),
        (Counter.ABANDONED, "gave up logging in (%)", "tab:red"),
        (Counter.GAVE_UP_PAGE, "left, pages failing (%)", "tab:purple"),
    ):
        steps(ax, axis.edges, 100 * axis.sum(per_second[column]) / tried, color=colour, label=label)
    time_axes(ax, axis)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("% of the people due")
    legend(ax)
    title = "Who got in: share of the people due in each bin who logged in, gave up, or left"
    caption = f"By intended arrival time (cohort), bins of {axis.bin_label}."
    return Chart.drawn(fig, "served", title, caption)


def served_per_group(ctx: Context) -> Chart | None:
    """Of each scenario group's people due in the SLO window, the share who got in, gave up, or were still logging
    in at the end (None for a run that did not record its people per group)."""
    groups = served_by_group(ctx.data)
    if not groups:
        return None
    fig, (ax,) = figure(height=0.6 + 0.45 * len(groups))
    rows = np.arange(len(groups))
    left = np.zeros(len(groups))
    for label, colour, counted in (
        ("got in", "tab:green", [g.served for g in groups]),
        ("gave up logging in", "tab:red", [g.gave_up for g in groups]),
        ("still logging in at the end", "tab:orange", [g.unfinished for g in groups]),
    ):
        share = 100 * np.array(counted, dtype=float) / np.array([g.tried for g in groups], dtype=float)
        if label == "got in" or share.any():
            ax.barh(rows, share, left=left, color=colour, label=label)
        left += share
    ax.set_yticks(rows, [f"{g.group}: {g.share:.0%} ({g.served:,} of {g.tried:,})" for g in groups], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"% of the group's people due {ctx.data.slo_window_label()} who tried to log in")
    legend(ax)
    title = "Served share per group: of each group's people due in the SLO window, who got in"
    caption = (
        "By intended arrival time (cohort), within the SLO window, from groups.csv; what a bar leaves blank is "
        "people whose login the client crashed in."
    )
    return Chart.drawn(fig, "served-per-group", title, caption)


def _planned(ctx: Context) -> tuple[np.ndarray, np.ndarray] | None:
    """People in a session and in a virtual class the plan expects, per bin (run terms); None for a sweep or
    without the scenario, scale and speed."""
    data = ctx.data
    if not ctx.morning or data.scenario is None or not data.scale or not data.speed:
        return None
    replay = Replay(data.scenario, data.scale, data.speed)
    curves, seconds = replay.national, ctx.axis.seconds

    def per_bin(national: np.ndarray) -> np.ndarray:
        per_second = national_per_run_second(national, replay.speed, seconds) * replay.scale
        return ctx.axis.mean(pd.Series(per_second, index=np.arange(seconds)))

    return per_bin(curves.total_concurrent()), per_bin(curves.virtual_classes.total_in_class())


def pool_series(ctx: Context) -> np.ndarray:
    """Agents in the pool per bin: the bin's largest sample; a second nobody sampled is not a zero (NaN after the
    last sample)."""
    return ctx.axis.max(ctx.gauges[Gauge.POOL_SIZE])


def concurrency(ctx: Context) -> Chart | None:
    if ctx.data.sessions is None:
        return None
    axis, gauges = ctx.axis, ctx.gauges
    fig, (ax,) = figure(height=3.6)
    edges = axis.edges
    steps(ax, edges, pool_series(ctx), color="tab:gray", label="agents in the pool (max)")
    steps(ax, edges, axis.mean(gauges[Gauge.ACTIVE_SESSIONS]), color="tab:blue", label="people in a session")
    steps(ax, edges, axis.mean(gauges[Gauge.IN_VIRTUAL_CLASS]), color="tab:green", label="in a virtual class")
    waiting = axis.max(gauges[Gauge.WAITING_FOR_AGENT])
    if np.nan_to_num(waiting).any():
        steps(ax, edges, waiting, color="tab:red", label="arrivals waiting for an agent (max)")
    planned = _planned(ctx)
    if planned is not None:
        steps(ax, edges, planned[0], color="tab:blue", linestyle="--", alpha=0.7, label="planned: in a session")
        steps(ax, edges, planned[1], color="tab:green", linestyle="--", alpha=0.7, label="planned: in a class")
    time_axes(ax, axis)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("people / agents")
    legend(ax)
    title = "Concurrency: people in a session and in a virtual class against the plan, agents in the pool"
    caption = (
        f"Gauges sampled once a second by each generator process and summed; bin means (pool and waiting: bin "
        f"maxima) over {axis.bin_label}; a second no process sampled is left out, not drawn as zero."
        + (
            " Planned: Little's law over the scenario's arrivals and sessions (schoolsurge plan), at this run's "
            "scale; an overloaded platform holds fewer people than planned."
            if planned is not None
            else ""
        )
    )
    return Chart.drawn(fig, "concurrency", title, caption)
