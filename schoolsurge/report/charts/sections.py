"""The run report's charts, section by section: which charts each section of the report draws.

A chart is a function of the run's Context (charts/base.py) returning a Chart, or None when it has nothing to
draw; to add one, write it in the module of its subject and list it in its section below.
"""

from __future__ import annotations

from collections.abc import Callable

from schoolsurge.report.charts import latency, load, locust, people
from schoolsurge.report.charts.base import Chart, Context
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.series.axis import time_axis
from schoolsurge.report.series.latency import request_latency_histograms

Draw = Callable[[Context], Chart | None]

# section key -> the charts drawn in it, for a run with the engine's sessions.csv ...
SECTIONS: dict[str, tuple[Draw, ...]] = {
    "served": (people.served, people.served_per_group),
    "arrivals": (people.arrivals_rate, people.arrivals_cumulative),
    "concurrency": (people.concurrency,),
    "requests": (load.requests_and_failures,),
    "latency": (
        latency.login_over_time,
        latency.latency_vs_offered,
        latency.requests_over_time,
        latency.steps_over_time,
        latency.request_distribution,
        latency.login_cdf,
    ),
    "retries": (load.retries,),
    "generator": (load.generator,),
}
# ... and for one without (Locust's history only)
LOCUST_SECTIONS: dict[str, tuple[Draw, ...]] = {
    "concurrency": (locust.users,),
    "requests": (locust.throughput,),
    "latency": (locust.login, latency.steps_over_time, latency.login_cdf),
}
MORNING_ONLY = frozenset({"served"})  # a sweep's steps are not the morning


def context(data: RunData, steps: list[tuple[float, str]] | None = None) -> Context:
    """The run, its time axis (a sweep's `steps` marked on it) and its request latency histograms."""
    return Context(data, time_axis(data, steps=steps), request_latency_histograms(data))


def section_charts(ctx: Context) -> dict[str, list[Chart]]:
    """Each section's drawn charts (a chart with nothing to draw is left out)."""
    sections = SECTIONS if ctx.data.sessions is not None else LOCUST_SECTIONS
    drawn: dict[str, list[Chart]] = {}
    for key, draws in sections.items():
        if not ctx.morning and key in MORNING_ONLY:
            continue
        drawn[key] = [chart for draw in draws if (chart := draw(ctx)) is not None]
    return drawn
