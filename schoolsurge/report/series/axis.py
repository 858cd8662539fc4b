"""The time axis of the report's charts: bins of whole run seconds, never aliasing, labelled on the scenario clock.

A run replays the morning `speed` times faster, so one scenario minute is 60 / speed run seconds: at speed 36 that
is 1.7 s, and binning per-second counts by scenario minute puts one or two run seconds in alternate bins (a
zig-zag between 0 and twice the rate). Here a bin is always a whole number of run seconds, about one scenario
minute wide (`TARGET_SCENARIO_S`) or wider so that a run has at most `MAX_BINS` of them, and each bin is drawn at
the scenario clock of its start. A sweep, or a run whose clock is unknown, is drawn in run seconds.

The axis also knows what to mark on every time chart: the scenario's incidents (shaded) and the SLO window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from schoolsurge.errors import ReportError
from schoolsurge.report.load.capacity_steps import load_capacity_steps
from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import Gauge, StepStatus
from schoolsurge.scenario.schema import BotFlood

MAX_BINS = 200
TARGET_SCENARIO_S = 60  # a bin is about one scenario minute, when the run is short enough


@dataclass(frozen=True)
class Span:
    start: float  # axis units
    end: float
    label: str


@dataclass(frozen=True)
class TimeAxis:
    """Run seconds [0, seconds) cut into `count` bins of `width` run seconds (the last one may be shorter)."""

    seconds: int
    width: int
    clock: bool  # x is the scenario clock (seconds since midnight); else run seconds
    origin: float = 0.0  # x of run second 0
    speed: float = 1.0  # scenario seconds per run second (1 when x is run seconds)
    incidents: list[Span] = field(default_factory=list)
    slo: Span | None = None
    marks: list[tuple[float, str]] = field(default_factory=list)  # a sweep's steps: (x, label)

    @property
    def count(self) -> int:
        return max(1, math.ceil(self.seconds / self.width))

    def x(self, run_seconds: np.ndarray | pd.Series | float) -> np.ndarray:
        """Axis position of run seconds."""
        return self.origin + np.asarray(run_seconds, dtype=float) * self.speed

    @property
    def starts(self) -> np.ndarray:
        """Run second of each bin's start."""
        return np.arange(self.count) * self.width

    @property
    def run_edges(self) -> np.ndarray:
        """Run second of the bins' edges (count + 1 values; the last is the run's end)."""
        return np.minimum(np.arange(self.count + 1) * self.width, max(self.seconds, 1)).astype(float)

    @property
    def edges(self) -> np.ndarray:
        """x of the bins' edges (count + 1 values), for step drawings."""
        return self.x(self.run_edges)

    @property
    def seconds_in(self) -> np.ndarray:
        """Run seconds in each bin (the last one may hold fewer)."""
        return np.minimum(self.starts + self.width, max(self.seconds, 1)) - self.starts

    @property
    def bin_label(self) -> str:
        """What one bin is, for captions."""
        run = f"{self.width} run second{'s' if self.width > 1 else ''}"
        return f"{run} = {self.width * self.speed / 60:g} scenario minutes" if self.clock else run

    def _index(self, seconds: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(seconds, dtype=np.int64) // self.width, 0, self.count - 1)

    def sum(self, per_second: pd.Series) -> np.ndarray:
        """Per-run-second values (indexed by run second) summed over each bin."""
        values = pd.to_numeric(per_second, errors="coerce").fillna(0).to_numpy(dtype=float)
        index = self._index(per_second.index.to_numpy())
        return np.bincount(index, weights=values, minlength=self.count)[: self.count]

    def per_second(self, per_second: pd.Series) -> np.ndarray:
        """A count per run second averaged over each bin (a rate per run second)."""
        return self.sum(per_second) / self.seconds_in

    def per_scenario_minute(self, per_second: pd.Series) -> np.ndarray:
        """A count per run second as a rate per scenario minute (per run second when x is run seconds)."""
        return self.per_second(per_second) * (60 / self.speed if self.clock else 1.0)

    @property
    def rate_label(self) -> str:
        return "per scenario minute" if self.clock else "per run second"

    def mean(self, per_second: pd.Series) -> np.ndarray:
        """Mean over each bin of the seconds that have a value (NaN ones are ignored; NaN for a bin with none)."""
        return self._reduce(per_second, "mean")

    def max(self, per_second: pd.Series) -> np.ndarray:
        return self._reduce(per_second, "max")

    def _reduce(self, per_second: pd.Series, how: str) -> np.ndarray:
        values = pd.to_numeric(per_second, errors="coerce")
        grouped = values.groupby(self._index(per_second.index.to_numpy())).agg(how)
        return grouped.reindex(range(self.count)).to_numpy(dtype=float)

    def coarser(self, counts: np.ndarray, minimum: float = 30, min_bins: int = 24) -> TimeAxis:
        """This axis with bins k times wider, k the smallest that puts about `minimum` values (people, requests) in
        a non-empty bin, so that a percentile is not one person's time; it keeps at least `min_bins` bins."""
        counts = np.asarray(counts, dtype=float)
        total, non_empty = counts.sum(), int((counts > 0).sum())
        if not total:
            return self
        k = min(max(1, math.ceil(minimum * non_empty / total)), max(1, self.count // min_bins))
        return replace(self, width=self.width * k)


def run_seconds(data: RunData) -> int:
    """How many run seconds the charts span: the sessions' rows, else Locust's history."""
    if data.sessions is not None and len(data.sessions):
        return int(data.sessions["second"].max()) + 1
    if len(data.history) and data.test_start_unix is not None:
        return max(1, math.ceil(float(data.history["Timestamp"].max()) - data.test_start_unix) + 1)
    if len(data.history):
        return max(1, math.ceil(float(data.history["clock_s"].max() - data.history["clock_s"].min())) + 1)
    return 1


def sweep_end_s(data: RunData) -> int | None:
    """Where a sweep ended: the end of its last step that ran (the stop rule skips the rest, and the rows after it
    are the people of the stopped step finishing, not the sweep); None without capacity.csv."""
    try:
        steps = load_capacity_steps(data.run_dir)
    except ReportError:  # the capacity card says what is wrong with it
        return None
    if steps is None:
        return None
    ran = steps[steps["status"] != StepStatus.SKIPPED.value]
    ends = pd.to_numeric(ran["end_s"], errors="coerce").dropna()
    return math.ceil(float(ends.max())) if len(ends) else None


def time_axis(
    data: RunData, target_scenario_s: float = TARGET_SCENARIO_S, steps: list[tuple[float, str]] | None = None
) -> TimeAxis:
    """The run's time axis: the scenario clock for a morning, run seconds for a sweep (its `steps` marked) or when
    the clock is unknown."""
    seconds = run_seconds(data)
    if not data.kind.judged_on_the_morning:
        seconds = min(seconds, sweep_end_s(data) or seconds)
    clock = data.kind.judged_on_the_morning and data.clock_start_s is not None and bool(data.speed)
    speed = float(data.speed) if clock and data.speed else 1.0
    width = max(1, round(target_scenario_s / speed)) if clock else 1
    width = max(width, math.ceil(seconds / MAX_BINS))
    if not clock:
        return TimeAxis(seconds, width, False, marks=list(steps or []))
    origin = float(data.clock_start_s or 0.0)
    scenario = data.scenario
    incidents, slo = [], None
    if scenario is not None:
        end = scenario.window.end_s
        for incident in scenario.incidents:
            if isinstance(incident, BotFlood):
                incidents.append(Span(incident.start_s, incident.end_s, f"bot flood {incident.start}-{incident.end}"))
            else:
                restored = incident.restored_s if incident.restored_s is not None else end
                label = f"{incident.fraction:.0%} of capacity lost {incident.at}-{incident.restored_at or 'end'}"
                incidents.append(Span(incident.at_s, restored, label))
        window = scenario.slo_window
        slo = Span(window.start_s, window.end_s, f"SLO window {window.start}-{window.end}")
    return TimeAxis(seconds, width, True, origin, speed, incidents, slo)


def sampled_gauges(sessions: pd.DataFrame) -> pd.DataFrame:
    """The gauges of sessions.csv per run second, with the seconds no process sampled as NaN.

    A second missing from the ledger (a sampling tick that slipped, the last row written before its sample) is
    written as zeros; it is not a zero. The pool is never empty once the run has started, so a second whose pool
    is 0 after the first sampled second was not sampled: it holds the values of the second before, and after the
    last sampled second the gauges are NaN. A process whose sample of a second is missing (several processes)
    leaves a dip: the pool's single-second dips are filled from its neighbours (it never shrinks in the window)."""
    gauges = sessions.set_index("second")[[g.value for g in Gauge]].astype(float)
    sampled = gauges[Gauge.POOL_SIZE] > 0
    if sampled.any():
        first, last = sampled.idxmax(), sampled[::-1].idxmax()
        # a second nobody sampled holds the gauges of the second before; after the last sampled second (the run's
        # tail, rows of counters only) there is no value, not zeros
        gauges = gauges.where(sampled | (gauges.index < first)).ffill()
        gauges.loc[gauges.index > last, :] = np.nan
        pool = gauges[Gauge.POOL_SIZE]
        neighbours = pd.concat([pool.shift(1), pool.shift(-1)], axis=1).min(axis=1, skipna=False)
        gauges[Gauge.POOL_SIZE] = pool.where(~(pool < neighbours), neighbours)
    return gauges
