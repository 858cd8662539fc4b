"""Requests and failures per second from Locust's statistics history, by differences of its running totals.

Each history row holds an entry's running totals ("Total Request Count", "Total Failure Count") and Locust's own
rate over a recent window ("Requests/s"), which lags: it reads 0 for the first ticks and under the true rate while
the load rises. The rate over an interval is instead the totals' difference over its length, exact whatever the
ticks' spacing: the totals are interpolated at the bins' edges, and a bin no tick covers has no value (a gap,
never a zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import AGGREGATED

COUNT_COLUMNS = {"requests": "Total Request Count", "failures": "Total Failure Count"}


@dataclass(frozen=True)
class RunningTotals:
    """The running totals at each tick of the history, in run seconds from the test's start (0, 0 at 0)."""

    seconds: np.ndarray
    requests: np.ndarray
    failures: np.ndarray
    entries: str  # which history rows were counted, for captions

    @property
    def last_second(self) -> float:
        return float(self.seconds[-1])

    def per_second(self, edges: np.ndarray) -> pd.DataFrame:
        """Requests and failures per run second over each interval [edges[i], edges[i + 1]) (run seconds); NaN
        for an interval after the last tick, the part of one before it counted over that part only."""
        edges = np.asarray(edges, dtype=float)
        starts, ends = edges[:-1], np.minimum(edges[1:], self.last_second)
        covered = ends - starts
        columns = {}
        for name, totals in (("requests", self.requests), ("failures", self.failures)):
            added = np.interp(ends, self.seconds, totals) - np.interp(starts, self.seconds, totals)
            with np.errstate(divide="ignore", invalid="ignore"):
                columns[name] = np.where(covered > 0, added / covered, np.nan)
        return pd.DataFrame(columns, index=pd.Index(starts, name="second"))


def running_totals(data: RunData) -> RunningTotals | None:
    """The requests and failures of the history's entries (a schoolsurge run's people's: bots and the login flow
    entries left out) when it has one row per entry (--csv-full-history), else Locust's Aggregated total; None
    without a known start."""
    history = data.history
    if data.test_start_unix is None or not len(history):
        return None
    rows = history[data.is_request_row(history)]
    entries = (
        "every entry's requests (Locust's total row left out)"
        if data.plain_locust
        else "people's requests (Locust's entries, bots and the login flow summary left out)"
    )
    if rows.empty:
        rows = history[history["Name"].astype(str) == AGGREGATED]
        entries = "Locust's Aggregated total (every entry: the history has no rows per entry)"
    if rows.empty:
        return None
    rows = rows.sort_values("Timestamp", kind="stable")
    seconds = (rows["Timestamp"] - data.test_start_unix).clip(lower=0)
    added = {}
    for name, column in COUNT_COLUMNS.items():
        totals = rows[column].fillna(0.0).astype(float)
        # an entry's first row adds its whole total; a reset (--reset-stats) adds nothing rather than a negative
        added[name] = totals.groupby(rows["Name"]).diff().fillna(totals).clip(lower=0).groupby(seconds).sum()
    ticks = pd.DataFrame(added).sort_index().cumsum()
    if ticks.index[0] > 0:
        ticks = pd.concat([pd.DataFrame({name: [0.0] for name in COUNT_COLUMNS}, index=[0.0]), ticks])
    return RunningTotals(
        ticks.index.to_numpy(dtype=float),
        ticks["requests"].to_numpy(dtype=float),
        ticks["failures"].to_numpy(dtype=float),
        entries,
    )
