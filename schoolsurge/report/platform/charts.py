"""Charts of the platform's side, from the target's scrapes (platform/series.py): its CPU and database time,
requests in flight and queued, requests admitted and shed by reason with login throttling, and the operational
laws' CPU bound against the throughput it carried. On the report's time axis (scenario clock, incidents and the
SLO window marked; a sweep in run seconds with its steps), each counter as a rate over the interval between two
scrapes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from schoolsurge.report.charts.base import Chart, figure, legend, time_axes
from schoolsurge.report.platform.laws import OperationalLaws
from schoolsurge.report.platform.series import PlatformSeries
from schoolsurge.report.series.axis import TimeAxis
from schoolsurge.rundir.metrics import SHED_REASONS, ShedReason

SHED_COLOURS = {
    ShedReason.LOGIN_RATE: "#ff9896",
    ShedReason.REQUEST_RATE: "#d62728",
    ShedReason.SESSIONS_FULL: "#9467bd",
    ShedReason.QUEUE_FULL: "#8c564b",
    ShedReason.QUEUE_TIMEOUT: "#7f7f7f",
}


LOG_SCALE_OVER_LIMIT = 20  # offered past this multiple of the limit: a log axis


def _edges(axis: TimeAxis, rates: pd.DataFrame) -> np.ndarray:
    return axis.x(np.append(rates["start_s"].to_numpy(dtype=float), rates["end_s"].to_numpy(dtype=float)[-1:]))


def _values(rates: pd.DataFrame, column: str) -> np.ndarray:
    return rates[column].to_numpy(dtype=float)


def cpu(series: PlatformSeries, axis: TimeAxis, laws: OperationalLaws | None) -> Chart | None:
    rates = series.rates()
    if series.cpu_metric is None or rates.empty:
        return None
    edges = _edges(axis, rates)
    with_db = series.has("db_s")
    fig, panels = figure(2 if with_db else 1, height=4.6 if with_db else 3.0)
    top = panels[0]
    top.stairs(np.nan_to_num(_values(rates, "cpu_s")), edges, color="tab:blue", label="platform CPU: cores busy")
    cores = series.cores
    if cores is not None:
        top.axhline(cores, color="tab:red", linestyle="--", linewidth=0.9, label=f"m = {cores} cores: U = 100%")
    time_axes(top, axis, label=not with_db)
    busy = rates["cpu_s"].dropna()
    top.set_ylim(0, max(float(cores or 0) * 1.05, float(busy.max()) * 1.1 if len(busy) else 0.0, 0.1))
    top.set_ylabel("cores busy (CPU s/s)", fontsize=8)
    legend(top)
    if with_db:
        bottom = panels[1]
        db = np.nan_to_num(_values(rates, "db_s"))
        bottom.stairs(db, edges, color="tab:purple", label="database: statement seconds per second")
        mean = bottom.twinx()
        mean.stairs(_values(rates, "db_mean_ms"), edges, color="tab:gray", linestyle="--")
        mean.set_ylabel("mean statement (ms)", fontsize=8)
        mean.set_ylim(bottom=0)
        bottom.plot([], [], color="tab:gray", linestyle="--", label="mean statement time (ms, right)")
        time_axes(bottom, axis)
        bottom.set_ylim(bottom=0)
        bottom.set_ylabel("statements in execution", fontsize=8)
        legend(bottom)
    title = "Platform side: CPU and database time"
    caption = (
        f"Rate of {series.cpu_metric} between two scrapes of the target's metrics (every "
        f"{series.interval_s:.1f} run s): cores busy, all the platform's processes; U = cores busy / m. "
        "Database time: SQLite statements' execution time (lock waits included) per second, and per statement."
    )
    return Chart.drawn(fig, "platform-cpu", title, caption)


def concurrency(series: PlatformSeries, axis: TimeAxis, laws: OperationalLaws | None) -> Chart | None:
    frame = series.frame
    if not (series.has("in_flight") or series.has("queued")):
        return None
    x = axis.x(frame["run_s"].to_numpy(dtype=float))
    fig, (ax,) = figure(1, height=3.0)
    for column, limit_column, label, colour in (
        ("in_flight", "in_flight_limit", "requests in flight", "tab:blue"),
        ("queued", "queue_limit", "requests queued for a slot", "tab:orange"),
        ("rate_gate_waiting", None, "requests waiting for a rate token (profile)", "tab:red"),
    ):
        if not series.has(column):
            continue
        limit = frame[limit_column].dropna() if limit_column else pd.Series(dtype=float)
        suffix = f" (limit {limit.iloc[-1]:g})" if len(limit) and np.isfinite(limit.iloc[-1]) else ""
        ax.plot(x, frame[column].to_numpy(dtype=float), color=colour, marker=".", label=label + suffix)
    time_axes(ax, axis)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("requests (at the scrape)", fontsize=8)
    legend(ax)
    title = "Platform side: requests in flight and queued"
    caption = (
        "Gauges as each scrape found them (all workers): requests being served, waiting for one of the admission "
        "slots, and waiting for a token of the profile's rate limits. The limits are the machine's (all workers)."
    )
    return Chart.drawn(fig, "platform-concurrency", title, caption)


def logins(series: PlatformSeries, axis: TimeAxis, laws: OperationalLaws | None) -> Chart | None:
    """Offered against admitted logins, with the profile's login-rate limit: where offered rises past the line,
    the difference is shed (503) or throttled (429), and people wait, retry and give up."""
    rates = series.login_rates()
    if rates is None or rates.empty:
        return None
    edges = _edges(axis, rates)
    fig, (ax,) = figure()
    ax.stairs(_values(rates, "offered"), edges, color="tab:blue", label="offered: credential posts / s")
    ax.stairs(_values(rates, "admitted"), edges, color="tab:green", fill=True, alpha=0.4, label="admitted / s")
    limit = _values(rates, "limit")
    if np.isfinite(limit).any():
        ax.stairs(limit, edges, color="tab:red", linestyle="--", linewidth=1.2, label="the profile's login-rate limit")
    time_axes(ax, axis)
    offered = _values(rates, "offered")
    if np.isfinite(limit).any() and np.nanmax(offered) > LOG_SCALE_OVER_LIMIT * np.nanmax(limit):
        # retries can offer a hundred times the limit: on a linear axis the limit and the admitted would be a flat
        # line at the bottom
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(float(np.nanmin(limit)) / 10, 1e-3))
        ax.set_ylabel("logins / s (run terms, log)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("logins / s (run terms)")
    legend(ax)
    title = "Logins offered and admitted against the login-rate limit"
    caption = (
        "From the platform's own counters, per second between two scrapes, in run terms (national: divided by the "
        "load fraction): credential posts offered (admitted, shed with 503 for the login rate, or throttled with "
        "429) and admitted (credentials checked). The dashed line is the profile's login-rate limit at the run's "
        "level (an incident lowers it); none drawn when the profile sets none."
    )
    return Chart.drawn(fig, "platform-logins", title, caption)


def admission(series: PlatformSeries, axis: TimeAxis, laws: OperationalLaws | None) -> Chart | None:
    rates = series.rates()
    if rates.empty or not series.has("requests"):
        return None
    edges = _edges(axis, rates)
    fig, (top, bottom) = figure(2, height=4.8)
    layer = np.nan_to_num(_values(rates, "admitted")).clip(min=0)
    top.stairs(layer, edges, fill=True, color="tab:green", alpha=0.5, label="admitted")
    for reason in SHED_REASONS:
        values = np.nan_to_num(_values(rates, f"shed_{reason}"))
        if values.any():
            colour = SHED_COLOURS[reason]
            top.stairs(layer + values, edges, baseline=layer, fill=True, color=colour, label=f"shed: {reason}")
            layer = layer + values
    other = np.nan_to_num(_values(rates, "other_503"))
    if other.any():
        top.stairs(layer + other, edges, baseline=layer, fill=True, color="black", alpha=0.6, label="503: other (busy)")
    time_axes(top, axis, label=False)
    top.set_ylim(bottom=0)
    top.set_ylabel("requests / s", fontsize=8)
    legend(top)
    bottom.stairs(np.nan_to_num(_values(rates, "status_429")), edges, color="tab:orange", label="429 answers / s")
    if series.has("logins_throttled"):
        bottom.stairs(
            np.nan_to_num(_values(rates, "logins_throttled")),
            edges,
            color="tab:brown",
            linestyle="--",
            label="logins throttled / s",
        )
    time_axes(bottom, axis)
    throttled = rates[["status_429", "logins_throttled"]].max().max()
    bottom.set_ylim(0, max(1.0, float(throttled) * 1.1 if np.isfinite(throttled) else 1.0))
    bottom.set_ylabel("login throttling / s", fontsize=8)
    legend(bottom)
    title = "Platform side: requests admitted and shed (503 by reason), login throttling (429)"
    caption = (
        "The platform's own count of requests (its /metrics scrapes left out), per second between two scrapes: "
        "those admitted, and those refused with 503 by reason: the profile's limits (login_rate, request_rate, "
        "sessions_full) or the machine's (queue_full, queue_timeout). Below: answers 429, login throttling."
    )
    return Chart.drawn(fig, "platform-admission", title, caption)


def laws(series: PlatformSeries, axis: TimeAxis, laws: OperationalLaws | None) -> Chart | None:
    if laws is None or laws.bound is None:
        return None
    fig, (top, bottom) = figure(2, height=4.6)
    for number, window in enumerate(laws.windows):
        x0, x1 = axis.x(window.start_s), axis.x(window.end_s)
        first = number == 0
        top.hlines(window.cpu.throughput, x0, x1, color="tab:green", linewidth=2, label="X carried" if first else None)
        if window.cpu.bound:
            top.hlines(
                window.cpu.bound, x0, x1, color="tab:red", linestyle="--", label="CPU bound m / D" if first else None
            )
        bottom.hlines(100 * window.cpu.utilisation, x0, x1, color="tab:blue", linewidth=2, label="U" if first else None)
    if laws.usl_ceiling is not None:
        top.axhline(laws.usl_ceiling, color="tab:purple", linestyle=":", label="USL ceiling")
    top.set_yscale("log")
    top.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    top.yaxis.set_minor_formatter(NullFormatter())
    time_axes(top, axis, label=False)
    top.set_ylabel("successful requests / s", fontsize=8)
    legend(top)
    time_axes(bottom, axis)
    bottom.set_ylim(0, 105)
    bottom.set_ylabel("CPU utilisation U (%)", fontsize=8)
    legend(bottom)
    per = laws.window_is
    title = "Operational laws: throughput carried against the platform's CPU bound"
    caption = (
        f"Per {per}: X, people's successful requests/s (run terms); U, the platform's CPU busy over its m cores; "
        "D = m U / X, CPU seconds per request; the CPU would be saturated at X = m / D (log scale)."
    )
    return Chart.drawn(fig, "platform-laws", title, caption)


CHARTS: tuple[Callable[[PlatformSeries, TimeAxis, OperationalLaws | None], Chart | None], ...] = (
    logins,
    cpu,
    concurrency,
    admission,
    laws,
)
