"""The run report's charts, section by section: which charts each section of the report draws.

A chart is a function of the run's Context (charts/base.py) returning a Chart, or None when it has nothing to
draw; to add one, write it in the module of its subject and list it in its section below.
"""

from __future__ import annotations

from collections.abc import Callable

from schoolsurge.report.charts import latency as charts_latency
from schoolsurge.report.charts import load as charts_load
from schoolsurge.report.charts import locust as charts_locust
from schoolsurge.report.charts import people as charts_people
from schoolsurge.report.charts.base import Chart, Context
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.series.axis import time_axis
from schoolsurge.report.series.latency import request_latency_histograms

Draw = Callable[[Context], Chart | None]

# section key -> the charts drawn in it, for a run with the engine's sessions.csv ...
SECTIONS: dict[str, tuple[Draw, ...]] = {
    "served": (charts_people.served,),
    "arrivals": (charts_people.arrivals_rate, charts_people.arrivals_cumulative),
    "concurrency": (charts_people.concurrency,),
    "requests": (charts_load.requests_and_failures,),
    "latency": (
        charts_latency.login_over_time,
        charts_latency.requests_over_time,
        charts_latency.steps_over_time,
        charts_latency.request_distribution,
        charts_latency.login_cdf,
    ),
    "retries": (charts_load.retries,),
    "generator": (charts_load.generator,),
}
# ... and for one without (Locust's history only)
LOCUST_SECTIONS: dict[str, tuple[Draw, ...]] = {
    "concurrency": (charts_locust.users,),
    "requests": (charts_locust.throughput,),
    "latency": (charts_locust.login, charts_latency.steps_over_time, charts_latency.login_cdf),
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
