"""Charts of the load over time, from sessions.csv's event-time counters: people's requests and failures by kind
(bots apart), the retries that made the reconnection bubble, and the load generator's own health."""

from __future__ import annotations

import numpy as np

from schoolsurge.report.charts.base import Chart, Context, figure, legend, steps, time_axes
from schoolsurge.report.series.retries import retry_series
from schoolsurge.rundir import FAILURE_COUNTERS, Counter, Gauge

FAILURE_KINDS = {
    Counter.FAILURES_503: ("503 refused", "#d62728"),
    Counter.FAILURES_429: ("429 throttled", "#ff7f0e"),
    Counter.FAILURES_TIMEOUT: ("timeout (no answer, 504)", "#8c564b"),
    Counter.FAILURES_5XX: ("other 5xx", "#e377c2"),
    Counter.FAILURES_CONNECTION: ("connection refused or reset", "#7f7f7f"),
    Counter.FAILURES_OTHER: ("other (4xx, wrong content)", "#bcbd22"),
}
GENERATOR_CPU_LIMIT = 90  # % of one core: a Locust process near it cannot keep its clock


def failure_series(ctx: Context) -> dict[Counter, np.ndarray]:
    """People's failed requests per run second, by kind, per bin (event time)."""
    return {kind: ctx.axis.per_second(ctx.per_second[kind]) for kind in FAILURE_COUNTERS}


def requests_and_failures(ctx: Context) -> Chart | None:
    if ctx.data.sessions is None:
        return None
    axis, per_second = ctx.axis, ctx.per_second
    requests = axis.per_second(per_second[Counter.REQUESTS])
    failures = failure_series(ctx)
    failed = np.sum(list(failures.values()), axis=0)
    fig, (top, bottom) = figure(2, height=4.8)
    bottom_layer = requests - failed
    top.stairs(bottom_layer, axis.edges, fill=True, color="tab:green", alpha=0.5, label="people's requests, succeeded")
    for kind, series in failures.items():
        if series.any():
            label, colour = FAILURE_KINDS[kind]
            top.stairs(bottom_layer + series, axis.edges, baseline=bottom_layer, fill=True, color=colour, label=label)
            bottom_layer = bottom_layer + series
    bots = axis.per_second(per_second[Counter.BOT_LOGIN_ATTEMPTS])
    if bots.any():
        top.stairs(bots, axis.edges, color="black", linestyle="--", label="bots' login attempts (apart)")
    time_axes(top, axis, label=False)
    top.set_ylabel("per second")
    top.set_ylim(bottom=0)
    legend(top)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(requests > 0, 100 * failed / requests, np.nan)
    steps(bottom, axis.edges, ratio, color="tab:red", label="people's failed requests (%)")
    if ctx.data.scenario is not None and ctx.morning:
        budget = 100 * ctx.data.scenario.slo.error_ratio
        bottom.axhline(budget, color="tab:red", linestyle="--", linewidth=0.8, label=f"error budget {budget:g}%")
    time_axes(bottom, axis)
    bottom.set_ylabel("% failed")
    bottom.set_ylim(bottom=0)
    legend(bottom)
    title = "Requests and failures per second: people's, failures by kind, bots apart"
    caption = (
        f"People's HTTP requests as they completed (event time; the login flow entry and bots left out), per run "
        f"second averaged over {axis.bin_label}; failures stacked by kind on the successful ones. Bots' attempts are "
        "counted apart and are not in the error ratio."
    )
    return Chart.drawn(fig, "requests", title, caption)


def retries(ctx: Context) -> Chart | None:
    if ctx.data.sessions is None:
        return None
    axis = ctx.axis
    series = retry_series(ctx.data.sessions, axis)
    fig, (top, bottom) = figure(2, height=5.0)
    top.stairs(series.first_attempts_per_s, axis.edges, color="tab:blue", label="first login attempts / s")
    top.stairs(series.login_retries_per_s, axis.edges, color="tab:red", label="login retries / s")
    if series.page_retries_per_s.any():
        top.stairs(series.page_retries_per_s, axis.edges, color="tab:orange", label="page retries / s")
    bubble = (series.login_retries_per_s > series.first_attempts_per_s).astype(int)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], bubble, [0]])))
    for number, (start, end) in enumerate(zip(changes[::2], changes[1::2], strict=True)):
        label = "reconnection bubble: retries outnumber first attempts" if not number else None
        top.axvspan(axis.edges[start], axis.edges[end], color="tab:red", alpha=0.08, lw=0, label=label)
    requests = axis.per_second(ctx.per_second[Counter.REQUESTS])
    right = top.twinx()
    right.stairs(requests, axis.edges, color="tab:green", alpha=0.6, linestyle="--")
    right.set_ylabel("people's requests / s", color="tab:green", fontsize=8)
    right.set_ylim(bottom=0)
    top.plot([], [], color="tab:green", alpha=0.6, linestyle="--", label="people's requests / s (right)")
    time_axes(top, axis, label=False)
    top.set_ylim(bottom=0)
    top.set_ylabel("per run second")
    legend(top)
    steps(bottom, axis.edges, 100 * series.retry_share, color="tab:red", label="retries, % of login attempts")
    cohort = ctx.cohort_axis
    by_cohort = retry_series(ctx.data.sessions, cohort) if cohort != axis else series
    steps(bottom, cohort.edges, 100 * by_cohort.gave_up_share, color="tab:purple", label="gave up, % of people due")
    bottom.set_ylim(-2, 102)
    bottom.set_ylabel("%")
    per_person = bottom.twinx()
    steps(per_person, cohort.edges, by_cohort.attempts_per_person, color="tab:gray", linestyle="--")
    per_person.set_ylabel("login attempts per person", fontsize=8)
    per_person.set_ylim(bottom=0)
    bottom.plot([], [], color="tab:gray", linestyle="--", label="attempts per person due (right)")
    time_axes(bottom, axis)
    legend(bottom)
    title = "Retries: the reconnection bubble"
    caption = (
        "Top and retry share, event time: first attempts are people starting their session (their arrival second "
        "unless late), retries are counted when made. Gave up and attempts per person are by arrival (cohort): "
        f"login_attempts is counted in the person's arrival second, in bins of {ctx.cohort_axis.bin_label}. "
        f"Other bins: {axis.bin_label}."
    )
    return Chart.drawn(fig, "retries", title, caption)


def generator(ctx: Context) -> Chart | None:
    if ctx.data.sessions is None:
        return None
    axis, per_second, gauges = ctx.axis, ctx.per_second, ctx.gauges
    fig, (top, bottom) = figure(2, height=4.4)
    for column, label, colour in (
        (Counter.LATE, "started late", "tab:orange"),
        (Counter.DROPPED, "dropped", "tab:red"),
    ):
        total = int(per_second[column].sum())
        rate = axis.per_scenario_minute(per_second[column])
        top.stairs(rate, axis.edges, color=colour, label=f"{label} ({total:,})")
    waiting = axis.max(gauges[Gauge.WAITING_FOR_AGENT])
    steps(top, axis.edges, waiting, color="tab:gray", linestyle="--", label="arrivals waiting for an agent (max)")
    top.set_ylim(0, max(1.0, float(np.nanmax(waiting)) if np.isfinite(waiting).any() else 0, *top.get_ylim()))
    time_axes(top, axis, label=False)
    top.set_ylim(bottom=0)
    top.set_ylabel(f"people {axis.rate_label}", fontsize=8)
    legend(top)
    processes = ctx.data.manifest.processes
    processes = processes if processes and processes >= 1 else 1
    cpu = axis.mean(gauges[Gauge.GENERATOR_CPU_PERCENT]) / processes
    steps(bottom, axis.edges, cpu, color="tab:blue", label=f"CPU per generator process (mean of {processes})")
    bottom.axhline(GENERATOR_CPU_LIMIT, color="tab:red", linestyle="--", linewidth=0.8, label="saturated")
    time_axes(bottom, axis)
    bottom.set_ylim(0, max(105, float(np.nanmax(cpu)) + 5 if np.isfinite(cpu).any() else 105))
    bottom.set_ylabel("% of one core")
    legend(bottom)
    title = "Generator health: late and dropped arrivals, load generator CPU"
    caption = (
        "An arrival is late when no agent was free at its time and dropped when none was within --drop-after; "
        "a Locust process is one core at most, so a process near 100% cannot keep the clock and the run measures "
        "the generator. CPU is summed over the processes in sessions.csv; shown per process."
    )
    return Chart.drawn(fig, "generator", title, caption)
