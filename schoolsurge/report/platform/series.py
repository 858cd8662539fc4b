"""The platform's side of a run as series: its own Prometheus figures, scraped every few seconds into
target_metrics.jsonl (engine/target_metrics.py; their names: rundir/metrics.py), on the run's clock.

CPU (cores busy: the rate of `schoolsurge_platform_cpu_seconds_total`, or of the standard
`process_cpu_seconds_total` of another target), requests in flight and queued, requests admitted and shed by
reason (503), login throttling (429) and time in the database (`schoolsurge_db_statement_duration_seconds`).
Counters become rates over the interval between two scrapes (a counter that went down was reset: its new value
is what it counted since).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schoolsurge.files import open_regular_text, readable
from schoolsurge.rundir import TARGET_METRICS_SERIES
from schoolsurge.rundir.metrics import (
    CPU_CORES,
    DB_STATEMENT_SECONDS,
    HTTP_REQUESTS,
    IN_FLIGHT,
    IN_FLIGHT_LIMIT,
    LOGIN_RATE_LIMIT,
    LOGINS,
    PLATFORM_CPU_SECONDS,
    PROCESS_CPU_SECONDS_TOTAL,
    QUEUE_DEPTH,
    QUEUE_LIMIT,
    RATE_GATE_WAITING,
    SHED,
    SHED_REASONS,
    LoginOutcome,
    ShedReason,
    parse_scrape_line,
    total,
)

# The samples read here of the platform's metrics (rundir/metrics.py)
CPU_SECONDS = total(PLATFORM_CPU_SECONDS)
HTTP_REQUESTS_TOTAL = total(HTTP_REQUESTS)
SHED_TOTAL = total(SHED)
LOGINS_TOTAL = total(LOGINS)
DB_SECONDS = f"{DB_STATEMENT_SECONDS}_sum"
DB_STATEMENTS = f"{DB_STATEMENT_SECONDS}_count"
METRICS_ROUTE = "/metrics"  # the scrapes themselves, left out of the requests
COUNTER_COLUMNS = (
    "cpu_s",
    "requests",
    "status_429",
    "status_503",
    *(f"shed_{reason}" for reason in SHED_REASONS),
    "logins_throttled",
    "logins_checked",  # credentials checked (success or failure): the logins the platform admitted
    "db_s",
    "db_statements",
)
GAUGE_COLUMNS = (
    "in_flight",
    "queued",
    "rate_gate_waiting",
    "in_flight_limit",
    "queue_limit",
    "login_rate_limit",
    "cores",
)
log = logging.getLogger(__name__)


@dataclass
class PlatformSeries:
    """One row per scrape (`run_s`: run seconds of the scrape), counters cumulative, gauges as scraped."""

    frame: pd.DataFrame
    cpu_metric: str | None  # the CPU counter found, if any

    @property
    def cores(self) -> int | None:
        cores = self.frame["cores"].dropna()
        return int(cores.iloc[-1]) if len(cores) and cores.iloc[-1] >= 1 else None

    @property
    def interval_s(self) -> float:
        """The usual time between two scrapes."""
        gaps = np.diff(self.frame["run_s"].to_numpy(dtype=float))
        return float(np.median(gaps)) if len(gaps) else math.nan

    def has(self, column: str) -> bool:
        return bool(self.frame[column].notna().any())

    def cumulative(self, column: str) -> np.ndarray:
        """A counter made monotone: a drop is a reset, after which the counter's value is what it counted."""
        values = self.frame[column].to_numpy(dtype=float)
        if not len(values):
            return values
        steps = np.diff(values)
        steps = np.where(steps < 0, values[1:], steps)
        return np.concatenate([[values[0]], values[0] + np.cumsum(np.nan_to_num(steps))])

    def between(self, column: str, start_s: float, end_s: float) -> float | None:
        """How much a counter grew from run second start_s to end_s (linear between scrapes); None outside the
        scraped span."""
        run_s = self.frame["run_s"].to_numpy(dtype=float)
        if not self.has(column) or len(run_s) < 2 or start_s < run_s[0] or end_s > run_s[-1] or end_s <= start_s:
            return None
        values = self.cumulative(column)
        return float(np.interp(end_s, run_s, values) - np.interp(start_s, run_s, values))

    def rates(self) -> pd.DataFrame:
        """Per interval between consecutive scrapes: start, end, and each counter's rate per second."""
        run_s = self.frame["run_s"].to_numpy(dtype=float)
        out = pd.DataFrame({"start_s": run_s[:-1], "end_s": run_s[1:]})
        seconds = np.diff(run_s)
        for column in COUNTER_COLUMNS:
            out[column] = np.diff(self.cumulative(column)) / seconds if len(run_s) > 1 else []
        shed = out[[f"shed_{reason}" for reason in SHED_REASONS]].fillna(0).sum(axis=1)
        out["shed"] = shed
        out["admitted"] = out["requests"] - shed
        out["other_503"] = (out["status_503"] - shed).clip(lower=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["db_mean_ms"] = 1000 * np.diff(self.cumulative("db_s")) / np.diff(self.cumulative("db_statements"))
        return out[seconds > 0].reset_index(drop=True)

    def login_rates(self) -> pd.DataFrame | None:
        """Per interval between two scrapes: the credential posts offered to the platform (admitted, shed for the
        login rate with 503, or throttled with 429), those admitted (credentials checked), and the profile's
        login-rate limit at the interval's end (NaN when it sets none); None when the target counts no logins."""
        if not self.has("logins_checked"):
            return None
        rates = self.rates()
        limit = self.frame.set_index("run_s")["login_rate_limit"]
        out = pd.DataFrame({"start_s": rates["start_s"], "end_s": rates["end_s"]})
        out["admitted"] = rates["logins_checked"]
        out["offered"] = rates["logins_checked"] + rates[f"shed_{ShedReason.LOGIN_RATE}"] + rates["logins_throttled"]
        at_end = limit.reindex(rates["end_s"].to_numpy()).to_numpy(dtype=float)
        out["limit"] = np.where(np.isfinite(at_end), at_end, np.nan)
        return out

    def totals(self) -> dict[str, float]:
        """What each counter counted from the first scrape to the last."""
        return {
            column: float(values[-1] - values[0])
            for column in COUNTER_COLUMNS
            if self.has(column) and len(values := self.cumulative(column))
        }


def _scrape_row(samples: list[Any]) -> tuple[dict[str, float], bool]:
    row: dict[str, float] = {}
    own_cpu = False

    def add(column: str, value: float) -> None:
        row[column] = row.get(column, 0.0) + value

    for name, labels, value in samples:
        value = float(value)
        if name == CPU_SECONDS:
            own_cpu = True
            add("cpu_s", value)
        elif name == PROCESS_CPU_SECONDS_TOTAL:
            add("process_cpu_s", value)
        elif name == CPU_CORES:
            row["cores"] = value
        elif name == IN_FLIGHT:
            add("in_flight", value)
        elif name == QUEUE_DEPTH:
            add("queued", value)
        elif name == RATE_GATE_WAITING:
            add("rate_gate_waiting", value)
        elif name == IN_FLIGHT_LIMIT:
            row["in_flight_limit"] = value
        elif name == QUEUE_LIMIT:
            row["queue_limit"] = value
        elif name == LOGIN_RATE_LIMIT:
            row["login_rate_limit"] = value
        elif name == HTTP_REQUESTS_TOTAL and labels.get("route") != METRICS_ROUTE:
            add("requests", value)
            status = labels.get("status")
            if status in ("429", "503"):
                add(f"status_{status}", value)
        elif name == SHED_TOTAL and labels.get("reason") in SHED_REASONS:
            add(f"shed_{labels['reason']}", value)
        elif name == LOGINS_TOTAL and labels.get("outcome") == LoginOutcome.THROTTLED:
            add("logins_throttled", value)
        elif name == LOGINS_TOTAL and labels.get("outcome") in (LoginOutcome.SUCCESS, LoginOutcome.FAILURE):
            add("logins_checked", value)
        elif name == DB_SECONDS:
            add("db_s", value)
        elif name == DB_STATEMENTS:
            add("db_statements", value)
    return row, own_cpu


def read_series(run_dir: Path, test_start_unix: float | None) -> PlatformSeries | None:
    """The run's scrapes of the target (None without target_metrics.jsonl or any scrape in it). A line that is
    not a scrape (a write cut short) is skipped."""
    path = Path(run_dir) / TARGET_METRICS_SERIES
    if not readable(path):
        return None
    rows: list[dict[str, float]] = []
    own_cpu = False
    with open_regular_text(path, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                unix, samples = parse_scrape_line(line)
                row, own = _scrape_row(samples)
                row["unix"] = unix
            except (ValueError, KeyError, TypeError) as error:
                log.warning("%s line %d is not a scrape (%s)", path, number, error)
                continue
            own_cpu = own_cpu or own
            rows.append(row)
    if not rows:
        return None
    frame = pd.DataFrame(rows).sort_values("unix").reset_index(drop=True)
    for column in (*COUNTER_COLUMNS, *GAUGE_COLUMNS, "process_cpu_s"):
        if column not in frame:
            frame[column] = np.nan
        elif column in COUNTER_COLUMNS:  # a labelled counter has no sample before its first count: it was 0
            frame[column] = frame[column].fillna(0.0)
    cpu_metric = CPU_SECONDS if own_cpu else PROCESS_CPU_SECONDS_TOTAL if frame["process_cpu_s"].notna().any() else None
    if cpu_metric == PROCESS_CPU_SECONDS_TOTAL:
        frame["cpu_s"] = frame["process_cpu_s"]
    origin = test_start_unix if test_start_unix is not None else float(frame["unix"].iloc[0])
    frame.insert(0, "run_s", frame["unix"] - origin)
    return PlatformSeries(frame, cpu_metric)
