"""A run's curves for the comparison's charts, each binned by about one scenario minute (the served share by
about five) on the scenario clock, or on run seconds when the run's clock is unknown: time to log in p95,
people's requests and failures per second, people in a session, and the share served."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.series.axis import sampled_gauges
from schoolsurge.report.series.locust_rates import running_totals
from schoolsurge.rundir import AGGREGATED, FAILURE_COUNTERS, SESSIONS_CSV, Counter, Gauge, merged

CURVE_BIN_SCENARIO_S = 60  # charts and the peak minute: bins of about one scenario minute (whole run seconds)
SERVED_BIN_SCENARIO_S = 300  # the served share: bins of about five scenario minutes


@dataclass
class RunCurves:
    """A run's curves for the overlaid charts, each indexed by the scenario clock (s since midnight) of its bin's
    start, or by run seconds when the run's clock is unknown. Rates per run second and people in run terms."""

    login_p95_ms: pd.Series | None = None
    requests_per_s: pd.Series | None = None
    failures_per_s: pd.Series | None = None
    in_session: pd.Series | None = None
    served_share: pd.Series | None = None  # 0..1, of the people due in each bin
    sources: dict[str, str] = field(default_factory=dict)  # curve -> where it came from


def bin_width(data: RunData, scenario_s: float) -> int:
    """Whole run seconds about `scenario_s` scenario seconds long."""
    return max(1, round(scenario_s / (data.speed or 1.0)))


def on_scenario_clock(data: RunData) -> bool:
    """A morning whose clock is known is drawn on the scenario clock; a sweep (its clock is its steps') or a run
    whose clock is unknown, in run seconds."""
    return data.kind.judged_on_the_morning and data.clock_start_s is not None and bool(data.speed)


def _to_clock(data: RunData, index: pd.Index) -> pd.Index:
    """Run seconds -> scenario clock (s since midnight), when the run is drawn on it."""
    if not on_scenario_clock(data):
        return index
    return pd.Index(data.clock_start_s + index.to_numpy(dtype=float) * data.speed)


def people_rates(data: RunData) -> tuple[pd.DataFrame | None, str]:
    """People's requests and failures per run second (columns requests, failures; NaN for a second nothing
    measured): the engine's event-time counts in sessions.csv where it has them, else the differences of the
    running totals in Locust's history."""
    sessions = data.sessions
    if sessions is not None and Counter.REQUESTS in sessions and sessions[Counter.REQUESTS].sum() > 0:
        frame = sessions.set_index("second")
        rates = (
            pd.DataFrame(
                {
                    "requests": frame[Counter.REQUESTS].astype(float),
                    "failures": frame[list(FAILURE_COUNTERS)].sum(axis=1).astype(float),
                }
            )
            .groupby(level=0)
            .sum()
        )
        # every second of the run has its row: a second missing was not recorded, not a second without requests
        return rates.reindex(range(int(rates.index.max()) + 1)), SESSIONS_CSV
    totals = running_totals(data)
    if totals is None:
        return None, "none"
    rates = totals.per_second(np.arange(math.ceil(totals.last_second) + 1, dtype=float))
    rates.index = rates.index.astype(int)
    return rates, "differences of the running totals in Locust's statistics history"


def run_curves(data: RunData) -> RunCurves:
    curves = RunCurves()
    width = bin_width(data, CURVE_BIN_SCENARIO_S)
    # time to log in p95
    if data.histograms:
        by_bin: dict[int, list] = {}
        for second, histogram in data.histograms.items():
            by_bin.setdefault((second // width) * width, []).append(histogram)
        values = {}
        for start, histograms in sorted(by_bin.items()):
            total = merged(histograms)
            if total.get_total_count():
                values[start] = float(total.get_value_at_percentile(95))
        series = pd.Series(values, dtype=float)
        series.index = _to_clock(data, pd.Index(series.index))
        curves.login_p95_ms = series
        curves.sources["login p95"] = "the run's time-to-login histograms, by intended arrival"
    elif len(data.history):
        login = data.history[data.is_login_row(data.history)]
        login = login[pd.notna(login["95%"]) & (login["95%"] > 0)]
        if len(login):
            curves.login_p95_ms = pd.Series(login["95%"].to_numpy(dtype=float), index=login["clock_s"].to_numpy())
            curves.sources["login p95"] = "Locust's login entry (whole SSO flow, 10 s window)"
    # people's requests and failures
    rates, source = people_rates(data)
    if rates is not None and len(rates):
        # the mean of the seconds measured in each bin: a second nothing measured is left out, not taken as 0
        binned = rates.groupby((rates.index // width) * width).mean()
        binned.index = _to_clock(data, binned.index)
        curves.requests_per_s, curves.failures_per_s = binned["requests"], binned["failures"]
        curves.sources["requests"] = source
    # people in a session
    if data.sessions is not None:
        # a second no process sampled is NaN (not the zeros the ledger writes for it): left out of its bin's mean
        sessions = sampled_gauges(data.sessions)[Gauge.ACTIVE_SESSIONS]
        binned = sessions.groupby((sessions.index // width) * width).mean()
        binned.index = _to_clock(data, binned.index)
        curves.in_session = binned
        curves.sources["in a session"] = f"{SESSIONS_CSV}: people in a session"
    elif len(data.history) and "User Count" in data.history:
        users = data.history[data.history["Name"] == AGGREGATED]
        curves.in_session = pd.Series(users["User Count"].to_numpy(dtype=float), index=users["clock_s"].to_numpy())
        curves.sources["in a session"] = "Locust's simulated users (no sessions.csv)"
    # served share per 5-minute bin
    if data.sessions is not None:
        served_width = bin_width(data, SERVED_BIN_SCENARIO_S)
        sessions = data.sessions
        cohorts = sessions.groupby((sessions["second"] // served_width) * served_width)[
            [Counter.STARTED, Counter.LOGINS_SUCCEEDED]
        ].sum()
        tried = cohorts[Counter.STARTED].where(cohorts[Counter.STARTED] > 0)
        share = (cohorts[Counter.LOGINS_SUCCEEDED] / tried).dropna()
        share.index = _to_clock(data, pd.Index(share.index))
        curves.served_share = share
        curves.sources["served"] = f"{SESSIONS_CSV}: of the people due in each bin, those who got in"
    return curves
