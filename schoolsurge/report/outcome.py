"""What a run says in people's terms: the share served, and how far the run stood from its plan.

- Served share: of the people whose arrival fell in the SLO window and who tried to log in, the share who got
  in (after retries); those still logging in when the run ended were not served. 6 April 2021's reference:
  500,000 pupils and teachers reached "Ma classe à la maison" of about 1,352,000 who tried
  (docs/facts.md#the-event): 37%.
- Plan agreement: people in a session, people in a virtual class, virtual classes opened and requests per
  second, measured against what the models predict for the run's scale and speed, at their peaks and over the
  morning, on 5-minute (scenario clock) bins. On a healthy platform they agree within 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from schoolsurge.models.replay import Replay
from schoolsurge.report.data import RunData
from schoolsurge.rundir import Counter, Gauge

PUBLISHED_2021_REACHED = 500_000
PUBLISHED_2021_TRIED = 1_352_000
PUBLISHED_2021_SHARE = PUBLISHED_2021_REACHED / PUBLISHED_2021_TRIED
BIN_SCENARIO_S = 900  # plan and run are compared on bins of the scenario clock


@dataclass(frozen=True)
class ServedShare:
    window: str
    tried: int  # people of the run whose arrival fell in the window and who tried to log in
    served: int  # of those, people who got in
    gave_up: int  # of those, people who gave up logging in
    scale: float | None
    unfinished: int = 0  # of those, people still logging in when the run ended

    @property
    def share(self) -> float:
        return self.served / self.tried if self.tried else 0.0

    def line(self) -> str:
        national = ""
        if self.scale:
            national = f" (nationally about {self.served / self.scale:,.0f} of {self.tried / self.scale:,.0f})"
        waiting = f", {self.unfinished} were still logging in when the run ended" if self.unfinished else ""
        return (
            f"served {self.share:.0%}: {self.served} of the {self.tried} people of this run who tried to log in "
            f"{self.window}{national}; {self.gave_up} gave up{waiting}. 6 April 2021: {PUBLISHED_2021_SHARE:.0%} "
            f"({PUBLISHED_2021_REACHED:,} of about {PUBLISHED_2021_TRIED:,})"
        )


def served_share(data: RunData) -> ServedShare | None:
    """The served share of the people due in the SLO window, when the run has the engine's sessions."""
    if data.sessions is None:
        return None
    sessions = data.sessions
    seconds = data.slo_seconds() or (0.0, float("inf"))
    cohort = sessions[(sessions["second"] >= seconds[0]) & (sessions["second"] < seconds[1])]
    return ServedShare(
        window=data.slo_window_label(),
        tried=int(cohort[Counter.STARTED].sum()),
        served=int(cohort[Counter.LOGINS_SUCCEEDED].sum()),
        gave_up=int(cohort[Counter.ABANDONED].sum()),
        scale=data.scale,
        unfinished=int(cohort[Counter.UNFINISHED].sum()),
    )


@dataclass(frozen=True)
class Agreement:
    figure: str
    planned: float
    measured: float

    @property
    def ratio(self) -> float:
        return self.measured / self.planned if self.planned else float("inf")

    def within(self, tolerance: float) -> bool:
        return abs(self.ratio - 1.0) <= tolerance


def plan_agreement(data: RunData) -> list[Agreement]:
    """Run against plan, peak and mean of each figure over the window (run terms); [] without the engine's
    sessions or the run's scale and speed."""
    if data.sessions is None or data.scenario is None or not data.scale or not data.speed:
        return []
    replay = Replay(data.scenario, data.scale, data.speed)
    curves = replay.national
    width = max(1, round(BIN_SCENARIO_S / replay.speed))  # run seconds per bin
    bins = int(replay.duration_s // width)
    columns = [Gauge.ACTIVE_SESSIONS, Gauge.IN_VIRTUAL_CLASS, Counter.VIRTUAL_CLASSES_OPENED]
    sessions = data.sessions.set_index("second")[columns].reindex(range(bins * width), fill_value=0)

    def planned(national: np.ndarray, factor: float) -> np.ndarray:
        per_run_second = national_per_run_second(national, replay.speed, bins * width)
        return per_run_second.reshape(bins, width).mean(axis=1) * factor

    def measured(series: pd.Series) -> np.ndarray:
        return series.to_numpy(dtype=float)[: bins * width].reshape(bins, width).mean(axis=1)

    pairs = [
        (
            "people in a session",
            planned(curves.total_concurrent(), replay.scale),
            measured(sessions[Gauge.ACTIVE_SESSIONS]),
        ),
        (
            "people in a virtual class",
            planned(curves.virtual_classes.total_in_class(), replay.scale),
            measured(sessions[Gauge.IN_VIRTUAL_CLASS]),
        ),
    ]
    requests = data.people_requests_per_second()
    if requests is not None:
        people_requests = curves.total_requests() - curves.bot_requests
        pairs.append(
            (
                "requests per second",
                planned(people_requests, replay.load_fraction),
                measured(requests.reindex(range(bins * width), fill_value=0)),
            )
        )
    agreements = []
    for figure, plan_bins, run_bins in pairs:
        agreements.append(Agreement(f"{figure}, peak", float(plan_bins.max()), float(run_bins.max())))
        agreements.append(Agreement(f"{figure}, mean", float(plan_bins.mean()), float(run_bins.mean())))
    opened = curves.virtual_classes.total_opened * replay.scale
    agreements.append(
        Agreement("virtual classes opened", opened, float(sessions[Counter.VIRTUAL_CLASSES_OPENED].sum()))
    )
    return agreements


def national_per_run_second(national: np.ndarray, speed: float, run_seconds: int) -> np.ndarray:
    """A national per-second curve averaged over each run second (speed scenario seconds each)."""
    edges = np.minimum(np.round(np.arange(run_seconds + 1) * speed).astype(int), len(national))
    cumulative = np.concatenate([[0.0], np.cumsum(national)])
    spans = np.maximum(edges[1:] - edges[:-1], 1)
    return (cumulative[edges[1:]] - cumulative[edges[:-1]]) / spans
