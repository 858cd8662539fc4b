"""Charts of a capacity sweep, as inline SVG for the report: the three pictures that back its capacity answer (a
normal run's card has no steps: it draws the national demand against its answer's capacity, demand_chart.py).

1. Throughput against people in a session: the measured steps, the USL curve fitted to them, its peak N* and the
   SLO capacity, so a reader sees whether the fit follows the points before believing N*.
2. Latency against throughput (the hockey stick): where latency leaves the floor (the knee) and where it crosses
   the objective (the SLO capacity).
The national demand over the morning against the answer's capacity range and instance count is drawn by
demand_chart.py, for a sweep as for a run.

Axes say run terms or national terms; where both apply, the second is a secondary axis (rate / load fraction).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from schoolsurge.report.capacity.card import CapacityCard
from schoolsurge.report.capacity.demand_chart import demand_vs_capacity
from schoolsurge.report.charts.base import Chart, legend, svg
from schoolsurge.report.charts.base import figure as chart_figure
from schoolsurge.report.outcome.answer import Answer
from schoolsurge.rundir import TIME_TO_LOGIN_PERCENTILES, StepStatus

MEASURED_COLOUR, STOPPED_COLOUR, FIT_COLOUR, SLO_COLOUR, KNEE_COLOUR = (
    "tab:blue",
    "tab:red",
    "tab:gray",
    "tab:green",
    "tab:purple",
)


def _finish(figure: Figure, axes: list[Axes]) -> Figure:
    for ax in axes:
        legend(ax)  # above the axes: a legend inside covered the steps (upper left is where throughput rises)
    return figure


def _national_axis(axes: Axes, card: CapacityCard, which: str, label: str) -> None:
    """A secondary axis in national terms (run rate / load fraction), when the load fraction is known."""
    fraction = card.load_fraction
    if fraction is None:
        return
    functions = (lambda v: v / fraction, lambda v: v * fraction)
    secondary = axes.secondary_yaxis("right", functions=functions) if which == "y" else None
    if secondary is None:
        secondary = axes.secondary_xaxis("top", functions=functions)
        secondary.set_xlabel(label, fontsize=8)
    else:
        secondary.set_ylabel(label, fontsize=8)
    secondary.tick_params(labelsize=8)


def throughput_vs_concurrency(card: CapacityCard) -> Figure:
    """Successful requests/s against people in a session: steps, USL fit, N*, SLO capacity."""
    steps = card.measured_steps
    figure, (axes,) = chart_figure(height=3.6)
    for status, colour, marker, label in (
        (StepStatus.MEASURED.value, MEASURED_COLOUR, "o", "measured step"),
        (StepStatus.STOPPED.value, STOPPED_COLOUR, "X", "step that stopped the sweep"),
    ):
        chosen = steps[steps["status"] == status]
        if len(chosen):
            axes.scatter(chosen["concurrency"], chosen["successful_requests_per_s"], color=colour, marker=marker,
                         zorder=3, label=label)  # fmt: skip
    fit = card.usl
    if fit is not None:
        peak = fit.peak_concurrency
        top = max(float(steps["concurrency"].max()) if len(steps) else 1.0, peak or 0.0) * 1.15
        n = np.linspace(0.0, top, 300)
        axes.plot(n, fit.throughput(n), color=FIT_COLOUR, label=f"USL fit (R² {fit.r_squared:.2f})")
        if peak is not None and fit.peak_throughput is not None:
            axes.axvline(peak, color=FIT_COLOUR, linestyle=":", label=f"N* = {peak:,.0f} people")
            axes.plot([peak], [fit.peak_throughput], marker="*", markersize=12, color=FIT_COLOUR)
    if card.slo_requests_per_s is not None:
        prefix = "at least " if card.slo_requests and card.slo_requests.beyond_measured else ""
        axes.axhline(card.slo_requests_per_s, color=SLO_COLOUR, linestyle="--",
                     label=f"SLO capacity: {prefix}{card.slo_requests_per_s:,.1f}/s")  # fmt: skip
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("people in a session, N (run terms)")
    axes.set_ylabel("successful requests/s (run terms)")
    _national_axis(axes, card, "y", "national terms")
    return _finish(figure, [axes])


def latency_vs_throughput(card: CapacityCard) -> Figure:
    """The hockey stick: request latency p50/p95/p99 and login p95 against throughput, in sweep order."""
    steps = card.measured_steps
    x = steps["successful_requests_per_s"].to_numpy(dtype=float)
    figure, (axes,) = chart_figure(height=3.6)
    series = [
        *((f"request_latency_p{p}_ms", f"request p{p}", colour, "-")
          for p, colour in zip(TIME_TO_LOGIN_PERCENTILES, ("tab:blue", "tab:orange", "tab:red"), strict=True)),
        ("time_to_login_p95_ms", "time to log in p95", "tab:brown", "--"),
    ]  # fmt: skip
    plotted = False
    for column, label, colour, style in series:
        y = steps[column].to_numpy(dtype=float)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)  # a login p95 nobody reached (inf) is not drawn
        if np.isfinite(y).any():
            axes.plot(x, y, color=colour, linestyle=style, marker="o", markersize=4, label=label)
            plotted = True
    limit = card.limits.get("login p95")
    if limit is not None:
        axes.axhline(limit, color="tab:brown", linestyle=":", label=f"login p95 objective {limit:,.0f} ms")
    if card.knee_requests_per_s is not None:
        axes.axvline(card.knee_requests_per_s, color=KNEE_COLOUR, linestyle=":",
                     label=f"knee ({card.knee_measure}): {card.knee_requests_per_s:,.1f}/s")  # fmt: skip
    if card.slo_requests_per_s is not None:
        axes.axvline(card.slo_requests_per_s, color=SLO_COLOUR, linestyle="--",
                     label=f"SLO capacity: {card.slo_requests_per_s:,.1f}/s")  # fmt: skip
    if plotted:
        axes.set_yscale("log")
    axes.set_xlabel("successful requests/s (run terms)")
    axes.set_ylabel("ms (log)")
    _national_axis(axes, card, "x", "successful requests/s (national terms)")
    return _finish(figure, [axes])


SWEEP_CHARTS: tuple[tuple[str, Callable[[CapacityCard], Figure]], ...] = (
    ("Throughput against people in a session: measured steps, USL fit, N* and SLO capacity", throughput_vs_concurrency),
    ("Latency against throughput: the knee and the objective", latency_vs_throughput),
)


def capacity_charts(card: CapacityCard, answer: Answer) -> list[Chart]:
    """Each chart the card can draw: a sweep's two charts of its measured steps; for a sweep and a run, the
    national demand against the answer's capacity range (demand_chart.py)."""
    if card.kind == "run":
        return [demand_vs_capacity(card, answer)]
    charts = []
    for title, draw in SWEEP_CHARTS:
        if card.measured_steps.empty:
            continue
        key = f"capacity{len(charts)}"
        charts.append(Chart(key, title, "", svg(draw(card), key, title)))
    return [*charts, demand_vs_capacity(card, answer)]  # the answer's range (its measured steps) over the morning
