"""The run report's "Platform side" section: the target's own metrics scraped during the run (report/platform/),
its CPU bound by the operational laws over the run's windows, set in national terms by the capacity card."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from schoolsurge.report.capacity.card import CapacityCard
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.platform import charts as platform_charts
from schoolsurge.report.platform.laws import morning_laws
from schoolsurge.report.platform.series import read_series
from schoolsurge.report.series.axis import TimeAxis


def platform_section(data: RunData, axis: TimeAxis, card: CapacityCard | None) -> dict[str, Any] | None:
    """What the report's "Platform side" section shows (None without the target's scrapes)."""
    series = read_series(data.run_dir, data.test_start_unix)
    if series is None or len(series.frame) < 2:
        return None
    if card is not None:
        laws = card.operational_laws(series, lambda: data.sessions, data.speed, data.clock_start_s)
    else:
        laws = morning_laws(series, data.sessions, data.speed, data.clock_start_s)
    if data.sessions is None:  # the axis knows no run seconds of its own: the scrapes' span
        axis = dataclasses.replace(axis, seconds=max(axis.seconds, math.ceil(float(series.frame["run_s"].max()))))
    charts = [chart for draw in platform_charts.CHARTS if (chart := draw(series, axis, laws)) is not None]
    lines = [
        ("scrapes of the target's metrics", f"{len(series.frame):,}, every {series.interval_s:.1f} s (run time)"),
        ("CPU measured by", series.cpu_metric or "nothing: the target exports no CPU counter"),
    ]
    if series.cores is not None:
        lines.append(("cores the platform may use (m)", f"{series.cores}"))
    step_columns: list[str] = []
    step_rows: list[list[str]] = []
    if laws is not None and laws.busiest is not None:
        busiest = laws.busiest
        lines += [
            ("service demand D = m U / X", f"{1000 * (busiest.cpu.demand_s or 0):,.2f} ms CPU per successful request"),
            ("CPU bound X <= m / D", f"{laws.bound:,.0f} successful requests/s (run terms)"),
        ]
        if card is not None and (national := card.national_rate(laws.bound)) is not None:
            lines.append(("CPU bound, national terms", f"{national:,.0f} successful requests/s"))
        if laws.usl_ceiling is not None:
            lines.append(("USL ceiling (run terms)", f"{laws.usl_ceiling:,.0f} successful requests/s"))
        marginal = laws.marginal
        if marginal is not None and (bound := marginal.bound(laws.servers)) is not None:
            lines.append(
                (
                    "marginal demand (fit over the windows)",
                    f"{1000 * marginal.demand_s:,.2f} ms per request, {marginal.idle:.2f} cores busy at no load: "
                    f"X <= (m - idle) / D = {bound:,.0f} requests/s",
                )
            )
        step_columns, step_rows = laws.step_table()
    return {
        "lines": lines,
        "explanation": laws.explanation() if laws is not None else None,
        "charts": charts,
        "step_columns": step_columns,
        "step_rows": step_rows,
    }
