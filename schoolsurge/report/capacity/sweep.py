"""A capacity sweep's answer from its steps (capacity.csv, report/load/capacity_steps.py): the USL fit of
throughput against people in a session (its peak N*), the knee of latency against throughput (a model-free
reading of where queueing starts), the SLO capacity (the highest throughput at which every objective still holds,
models/capacity.py) and, against the scenario's national demand, the instances needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from schoolsurge.errors import FitError
from schoolsurge.models.capacity import DEFAULT_HEADROOM, demand_from_curves, national_answer, slo_capacity
from schoolsurge.models.knee import find_knee
from schoolsurge.models.population import national_curves
from schoolsurge.models.usl import fit_usl
from schoolsurge.report.capacity.card import OBJECTIVES
from schoolsurge.report.capacity.sweep_card import SweepCard
from schoolsurge.report.capacity.wording import steps_text
from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import min_people

GENERATOR_LATE_LIMIT = 0.01  # as report/outcome/health.py: more late or dropped arrivals measure the generator


def sweep_card(data: RunData, steps: pd.DataFrame, headroom: float = DEFAULT_HEADROOM) -> SweepCard:
    """The capacity answer of a sweep from its steps (load_capacity_steps): USL fit, knee, SLO capacity in run
    and national terms, and the instances the scenario's national morning needs."""
    card = SweepCard.empty(data, headroom)
    card.steps = steps
    sweep = data.manifest.sweep
    card.stop_margin = sweep.stop_margin if sweep is not None else None
    measured = card.measured_steps
    _fit(card, measured)
    _knee(card, measured)
    if data.scenario is not None:
        measures = {name: _judged(measured, name, column) for name, _, column in OBJECTIVES if name in card.limits}
        try:
            card.slo_requests = slo_capacity(measured["successful_requests_per_s"].tolist(), measures, card.limits)
            # Logins interpolated the same way, between the same steps, at the same fraction.
            card.slo_logins = slo_capacity(measured["logins_per_s"].tolist(), measures, card.limits)
        except FitError as error:
            card.notes.append(f"SLO capacity not computed: {error}")
        _national(card, data)
    late = measured[
        (measured["late"].fillna(0) + measured["dropped"].fillna(0))
        > GENERATOR_LATE_LIMIT * measured["arrivals"].fillna(0)
    ]
    if len(late):
        card.notes.append(
            f"{steps_text([int(s) for s in late['step']])}: more than {GENERATOR_LATE_LIMIT:.0%} of arrivals started "
            "late or were dropped, so those steps measured the load generator as much as the platform."
        )
    return card


def _judged(measured: pd.DataFrame, name: str, column: str) -> list[float | None]:
    """An objective's value at each step; a login percentile of a step with too few people for it judges
    nothing (rundir/figures.py `min_people`, as the sweep's stop rule), so it counts as holding there."""
    values = measured[column].tolist()
    if not name.startswith("login p"):
        return values
    least = min_people(int(name.removeprefix("login p")))
    people = measured["arrivals"].fillna(0).tolist()
    return [0.0 if count < least else value for value, count in zip(values, people, strict=True)]


def _fit(card: SweepCard, measured: pd.DataFrame) -> None:
    """The USL fit of successful requests/s against people in a session; a failed fit leaves its message."""
    usable = measured[(measured["concurrency"] > 0) & (measured["successful_requests_per_s"] > 0)]
    left_out = [int(s) for s in measured["step"] if s not in set(usable["step"])]
    if left_out:
        card.notes.append(f"{steps_text(left_out)} left out of the USL fit: nobody in a session or nothing served.")
    try:
        card.usl = fit_usl(usable["concurrency"].tolist(), usable["successful_requests_per_s"].tolist())
    except FitError as error:
        card.usl_error = str(error)
        return
    card.notes += [f"USL fit: {warning}." for warning in card.usl.warnings]


def _knee(card: SweepCard, measured: pd.DataFrame) -> None:
    """The knee of p95 latency against throughput on the rising branch: the steps up to the highest
    throughput (past it, throughput falls back while latency keeps climbing, which would fold the curve)."""
    if measured.empty:
        return
    rising = measured.iloc[: int(np.argmax(measured["successful_requests_per_s"].to_numpy())) + 1]
    for column, label in (("request_latency_p95_ms", "request latency p95"), ("time_to_login_p95_ms", "login p95")):
        finite = rising[np.isfinite(rising[column].to_numpy(dtype=float))]
        if len(finite) < 3:
            continue
        card.knee_measure = label
        x = finite["successful_requests_per_s"].to_numpy(dtype=float)
        y = finite[column].to_numpy(dtype=float)
        card.knee_requests_per_s = find_knee(x, y, curve="convex", direction="increasing")
        if card.knee_requests_per_s is not None:
            card.knee_latency_ms = float(y[np.isclose(x, card.knee_requests_per_s)].mean())
        return


def _national(card: SweepCard, data: RunData) -> None:
    """The national answer: the scenario's demand minute by minute against the SLO capacity / load fraction."""
    fraction = card.load_fraction
    if fraction is None or data.scenario is None:
        card.notes.append("No national terms: the manifest does not give the run's scale and speed.")
        return
    card.demand = demand_from_curves(national_curves(data.scenario))

    def positive(value: float | None) -> float | None:
        return value if value is not None and value > 0 else None

    try:
        card.national = national_answer(
            positive(card.slo_logins_per_s), positive(card.slo_requests_per_s), fraction, card.demand, card.headroom
        )
    except FitError as error:
        card.notes.append(f"No national answer: {error}")
