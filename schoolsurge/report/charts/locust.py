"""Charts from Locust's statistics history alone, for a run without the engine's sessions.csv (a plain Locust run,
or one of an earlier version): users, requests and failures, and the login entry's percentiles, each point
Locust's own figure over its recent window."""

from __future__ import annotations

import pandas as pd

from schoolsurge.report.charts.base import Chart, Context, figure, legend, steps, time_axes
from schoolsurge.report.series.locust_rates import running_totals
from schoolsurge.rundir import AGGREGATED


def _x(ctx: Context, rows: pd.DataFrame) -> pd.Series:
    data = ctx.data
    if ctx.axis.clock or data.test_start_unix is None:
        return rows["clock_s"]
    return rows["Timestamp"] - data.test_start_unix


def users(ctx: Context) -> Chart | None:
    history = ctx.data.history
    if not len(history):
        return None
    total = history[history["Name"].astype(str) == AGGREGATED]
    fig, (ax,) = figure()
    ax.plot(_x(ctx, total), total["User Count"], color="tab:blue", label="simulated users (Locust)")
    time_axes(ax, ctx.axis)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("users")
    legend(ax)
    title = "Simulated users over time"
    return Chart.drawn(fig, "users", title, "Locust's user count (agents), from its statistics history.")


def throughput(ctx: Context) -> Chart | None:
    """Requests and failures per second in each bin of the axis, from the differences of the history's running
    totals (Locust's own Requests/s is a lagging window: it reads 0 for the first ticks)."""
    totals = running_totals(ctx.data)
    if totals is None:
        return None
    axis = ctx.axis
    rates = totals.per_second(axis.run_edges)
    fig, (ax,) = figure()
    steps(ax, axis.edges, rates["requests"].to_numpy(), color="tab:green", label="requests/s")
    steps(ax, axis.edges, rates["failures"].to_numpy(), color="tab:red", label="failures/s")
    time_axes(ax, axis)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("per run second")
    legend(ax)
    title = "Requests and failures per second"
    caption = (
        f"Per run second, over bins of {axis.bin_label}: the differences of the running totals in Locust's "
        f"statistics history, counting {totals.entries}."
    )
    return Chart.drawn(fig, "throughput", title, caption)


def login(ctx: Context) -> Chart | None:
    data = ctx.data
    history = data.history
    if not len(history):
        return None
    rows = history[data.is_login_row(history)]
    rows = rows[pd.notna(rows["95%"]) & (rows["95%"] > 0)]
    if rows.empty:
        return None
    fig, (ax,) = figure()
    x = _x(ctx, rows)
    ax.plot(x, rows["50%"], color="tab:blue", label="login p50")
    ax.plot(x, rows["95%"], color="tab:orange", label="login p95")
    if data.scenario is not None:
        ax.axhline(data.scenario.slo.login_p95_ms, color="tab:red", linestyle="--", label="p95 objective")
    time_axes(ax, ctx.axis)
    ax.set_ylabel("ms (whole SSO flow)")
    legend(ax)
    title = "Login (whole SSO flow, Locust entry): p50 and p95"
    caption = "From Locust's statistics history (its recent window), the login flow entry."
    return Chart.drawn(fig, "login-locust", title, caption)
