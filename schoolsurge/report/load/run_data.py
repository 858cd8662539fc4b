"""A run directory read into tables (RunData), and what its SLOs are judged on (RunTotals): the SLO window's
requests, failures and time to log in.

RunData is filled by load/loader.py; everything else of the report reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from schoolsurge.report.kinds import MorningKind, ReportKind
from schoolsurge.rundir import (
    AGGREGATED,
    BOT_STEP_PREFIX,
    LOCUST_PREFIX,
    LOGIN_FLOW_NAME,
    LOGIN_FLOW_TYPE,
    LOGIN_MEASURE,
    TIME_TO_LOGIN_PERCENTILES,
    ClientSteps,
    Counter,
    LoginPercentile,
    Manifest,
    error_ratio,
    login_percentile,
    merged,
)
from schoolsurge.scenario import Scenario

LOGIN_PERCENTILES = TIME_TO_LOGIN_PERCENTILES  # the login objectives' percentiles (Slo login_p50/95/99_ms)


def run_profile(manifest: Manifest) -> str:
    """What the run was pointed at, as the index and comparisons list it: the embedded platform's profile, or
    the target's URL."""
    if manifest.profile:
        return manifest.profile
    target = manifest.target
    return f"target {target}" if target and target != "embedded" else "?"


@dataclass(frozen=True)
class RunTotals:
    """What the objectives are judged on, all within the SLO window."""

    window: str
    requests: int
    failures: int
    logins: int
    # percentile -> time to log in, ms, over everyone who tried (those who gave up or were still waiting at the
    # end never logged in: inf when they are more than the percentile's tail)
    login_ms: dict[int, float] = field(default_factory=dict)
    login_measure: str = LOGIN_MEASURE
    unfinished: int = 0  # people due in the window still logging in when the run ended (sessions.csv `unfinished`)
    gave_up: int = 0  # people due in the window who gave up logging in (sessions.csv `abandoned`)
    # percentile -> the engine's time to log in over everyone who tried (rundir/figures.py); empty for a plain
    # Locust run, whose login_ms is Locust's own
    login: dict[int, LoginPercentile] = field(default_factory=dict)

    @property
    def error_ratio(self) -> float:
        return error_ratio(self.failures, self.requests) or 0.0


class HistoryDetail(StrEnum):
    """How much of Locust's history a run has: what the charts over time can draw."""

    NONE = "none"  # no history file, or no row in it: nothing over time
    TOTAL = "total"  # only the Aggregated rows (no --csv-full-history): users and total requests over time
    BY_NAME = "by name"  # every entry's rows (--csv-full-history, as schoolsurge runs): every chart


@dataclass
class RunData:
    run_dir: Path
    manifest: Manifest
    stats: pd.DataFrame
    history: pd.DataFrame
    failures: pd.DataFrame
    scenario: Scenario | None
    clock_start_s: float | None = None
    speed: float | None = None
    test_start_unix: float | None = None
    sessions: pd.DataFrame | None = None
    # sessions.csv's counters and gauges a run of an earlier version did not record (loaded as 0)
    sessions_unrecorded: frozenset[str] = frozenset()
    groups: pd.DataFrame | None = None  # groups.csv: who got in per scenario group, by cohort second
    histograms: dict[int, HdrHistogram] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    locust_prefix: str = LOCUST_PREFIX  # the --csv prefix of Locust's files (run1 for run1_stats.csv)
    plain_locust: bool = False  # a Locust run without the schoolsurge engine: no manifest, sessions, timeline
    kind: ReportKind = field(default_factory=MorningKind)  # what the report makes of it (report/kinds.py)
    client_steps: ClientSteps = field(default_factory=ClientSteps)  # skipped, crashed, failed logins (rundir)

    @property
    def history_detail(self) -> HistoryDetail:
        if not len(self.history):
            return HistoryDetail.NONE
        by_name = (self.history["Name"].astype(str) != AGGREGATED).any()
        return HistoryDetail.BY_NAME if by_name else HistoryDetail.TOTAL

    @staticmethod
    def is_request_row(frame: pd.DataFrame) -> pd.Series:
        """Rows that count people's HTTP requests (not the login FLOW summary, the aggregate or bots)."""
        names = frame["Name"].astype(str)
        return (frame["Type"] != LOGIN_FLOW_TYPE) & (names != AGGREGATED) & ~names.str.startswith(BOT_STEP_PREFIX)

    def is_login_row(self, frame: pd.DataFrame) -> pd.Series:
        return (frame["Type"] == LOGIN_FLOW_TYPE) & (frame["Name"] == LOGIN_FLOW_NAME)

    @property
    def scale(self) -> float | None:
        """The run's scale (share of the people), from the manifest."""
        scale = self.manifest.scale
        return scale if scale and 0 < scale <= 1 else None

    def people_requests_per_second(self) -> pd.Series | None:
        """People's requests in each run second (bots, the login FLOW entries and the total row left out),
        from the running totals of Locust's full history; None without a known start."""
        if self.test_start_unix is None or not len(self.history):
            return None
        rows = self.history[self.is_request_row(self.history)]
        if rows.empty:
            return None
        rows = rows.sort_values("Timestamp")
        added = rows.groupby("Name")["Total Request Count"].diff().fillna(rows["Total Request Count"])
        second = (rows["Timestamp"] - self.test_start_unix).round().astype(int).clip(lower=0)
        return added.groupby(second).sum()

    def slo_seconds(self) -> tuple[float, float] | None:
        """The SLO window in run seconds, when the scenario and the clock are known."""
        if self.scenario is None or self.speed is None:
            return None
        window, start = self.scenario.slo_window, self.scenario.window.start_s
        return (window.start_s - start) / self.speed, (window.end_s - start) / self.speed

    def window_label(self) -> str:
        """The replayed morning, as the scenario's window: `07:00-10:00`."""
        if self.scenario is None:
            return "whole run"
        return f"{self.scenario.window.start}-{self.scenario.window.end}"

    def slo_window_label(self) -> str:
        if self.scenario is None:
            return "whole run"
        window = self.scenario.slo_window
        return f"{window.start}-{window.end}"

    def requests_in(self, seconds: tuple[float, float] | None) -> tuple[int, int]:
        """People's (requests, failures) within run seconds [a, b), from the history's running totals."""
        rows = self.stats[self.is_request_row(self.stats)]
        whole = int(rows["Request Count"].sum()), int(rows["Failure Count"].sum())
        if seconds is None or self.test_start_unix is None or not len(self.history):
            return whole
        history = self.history[self.is_request_row(self.history)]
        stamps = history["Timestamp"] - self.test_start_unix

        def running_totals(until: float) -> tuple[int, int]:
            last = history[stamps < until].groupby("Name").tail(1)
            return int(last["Total Request Count"].sum()), int(last["Total Failure Count"].sum())

        start, end = seconds
        # The run ended inside the window: the final totals close it. So too when the history has no request row
        # (every request was recorded as the test stopped, after Locust's last history row).
        after_end = history.empty or stamps.max() < end
        end_requests, end_failures = whole if after_end else running_totals(end)
        start_requests, start_failures = running_totals(start)
        return end_requests - start_requests, end_failures - start_failures

    def _completed_in(self, seconds: tuple[float, float] | None) -> tuple[float, float] | None:
        """The run seconds in which the requests of the SLO window `seconds` completed. A window that ends with
        the replay also takes in the requests completed as its last sessions drained, and those the end of the
        test left unanswered (recorded as failed then); any other window ends where it ends."""
        if seconds is None or self.scenario is None or self.speed is None:
            return seconds
        window = self.scenario.window
        start, end = seconds
        return (start, math.inf) if end >= (window.end_s - window.start_s) / self.speed else seconds

    def _people_in(self, counter: Counter, seconds: tuple[float, float] | None) -> int:
        """A cohort counter of sessions.csv over the people due within run seconds [a, b) (0 without it)."""
        if self.sessions is None:
            return 0
        start, end = seconds if seconds else (0.0, math.inf)
        due = self.sessions[(self.sessions["second"] >= start) & (self.sessions["second"] < end)]
        return int(due[counter].sum())

    def totals(self) -> RunTotals:
        seconds = self.slo_seconds()
        requests, failures = self.requests_in(self._completed_in(seconds))
        login = self.stats[self.is_login_row(self.stats)]
        logins = int(login["Request Count"].sum() - login["Failure Count"].sum())
        if self.histograms or self.sessions is not None:  # the engine's: from the intended arrival, by cohort
            start, end = seconds if seconds else (0.0, math.inf)
            window = merged(h for second, h in self.histograms.items() if start <= second < end)
            # Those who gave up and those still waiting at the end never logged in (rundir/figures.py): a target
            # that answers nobody cannot look fast.
            unfinished = self._people_in(Counter.UNFINISHED, seconds)
            gave_up = self._people_in(Counter.ABANDONED, seconds)
            login = {p: login_percentile(window, unfinished + gave_up, p) for p in LOGIN_PERCENTILES}
            login_ms = {p: figure.value_ms for p, figure in login.items() if figure.value_ms is not None}
            label = self.slo_window_label()
            return RunTotals(
                label,
                requests,
                failures,
                int(window.get_total_count()),
                login_ms,
                LOGIN_MEASURE,
                unfinished=unfinished,
                gave_up=gave_up,
                login=login,
            )
        # A run without the engine's histograms: Locust's whole-run login entry is all there is.
        percentiles = {p: float(login[f"{p}%"].iloc[0]) for p in LOGIN_PERCENTILES} if logins else {}
        return RunTotals(self.slo_window_label(), requests, failures, logins, percentiles, "whole run, Locust login")
