"""How far the run stood from its plan: people in a session, people in a virtual class, virtual classes opened and
requests per second, measured against what the models predict for the run's scale and speed, at their peaks and
over the morning, on 15-minute (scenario clock) bins. On a healthy platform they agree within 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from schoolsurge.models.replay import Replay
from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import Counter, Gauge

BIN_SCENARIO_S = 900  # plan and run are compared on bins of the scenario clock


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
