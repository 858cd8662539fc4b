"""The report's charts, section by section, as inline SVG.

Every chart over time is on the scenario clock (run seconds for a sweep, or when the clock is unknown), with the
scenario's incidents shaded and its SLO window marked, in bins of whole run seconds (schoolsurge/report/bins.py).
The modules that draw them:

- charts_people.py: arrivals (rate and cumulative), who got in, concurrency against the plan;
- charts_load.py: requests and failures by kind, retries, generator health;
- charts_latency.py: latency percentiles over time, per step, the request latency distribution, the login CDF;
- charts_locust.py: Locust's history alone, for a run without the engine's sessions.csv.
"""

from __future__ import annotations

from collections.abc import Callable

from schoolsurge.report import charts_latency, charts_load, charts_locust, charts_people
from schoolsurge.report.bins import time_axis
from schoolsurge.report.charts_base import Chart, Context
from schoolsurge.report.data import RunData
from schoolsurge.report.latency import request_latency_histograms

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


def context(data: RunData, sweep: bool = False, steps: list[tuple[float, str]] | None = None) -> Context:
    return Context(data, time_axis(data, sweep, steps=steps), sweep, request_latency_histograms(data))


def section_charts(ctx: Context) -> dict[str, list[Chart]]:
    """Each section's drawn charts (a chart with nothing to draw is left out)."""
    sections = SECTIONS if ctx.data.sessions is not None else LOCUST_SECTIONS
    drawn: dict[str, list[Chart]] = {}
    for key, draws in sections.items():
        if ctx.sweep and key in MORNING_ONLY:
            continue
        drawn[key] = [chart for draw in draws if (chart := draw(ctx)) is not None]
    return drawn
