"""The capacity answer of a run, the first thing its report says: how much load this platform holds with every
SLO met, and what that means for the national morning.

Why first: a planner wants "7 instances with 30% headroom", not p95 at 08:12; the charts and tables below it are
there to check the answer. A capacity sweep (`schoolsurge capacity`, capacity.csv) gives the whole answer
(`sweep_card`): the USL fit of throughput against people in a session (its peak N*), the knee of latency
against throughput (a model-free reading of where queueing starts), the SLO capacity (the highest throughput at
which every objective still holds, models/capacity.py) and, against the scenario's national demand, the
instances needed. A normal run gives a shorter one (`run_card`): the highest load it held for a few minutes in a
row with every SLO met, the lowest at which they broke, and the share of people who logged in within the
objective, against 6 April 2021.

Run terms are this run's people and clock. National terms divide rates by the load fraction (scale x speed) and
people by the scale. Every figure of a sentence says which it is.

The card itself is report/capacity_card.py (its sentences report/capacity_text.py); a sweep's capacity.csv is
read by report/capacity_steps.py and a normal run's card built by report/capacity_run.py. This module puts them
together and writes capacity.json; it re-exports their public names.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schoolsurge.errors import FitError
from schoolsurge.models.capacity import DEFAULT_HEADROOM, demand_from_curves, national_answer, slo_capacity
from schoolsurge.models.knee import find_knee
from schoolsurge.models.population import national_curves
from schoolsurge.models.usl import fit_usl
from schoolsurge.report.capacity_card import (
    OBJECTIVES,
    SUSTAINED_BINS,
    CapacityCard,
    RunFigures,
    RunLoad,
    empty_card,
    objective_limits,
)
from schoolsurge.report.capacity_run import run_card
from schoolsurge.report.capacity_steps import load_capacity_steps
from schoolsurge.report.capacity_text import _steps_text
from schoolsurge.report.data import RunData
from schoolsurge.report.outcome import PUBLISHED_2021_SHARE
from schoolsurge.rundir import CAPACITY_CSV, CAPACITY_JSON, RunKind, StepStatus, write_json

__all__ = [
    "CapacityCard",
    "RunFigures",
    "RunLoad",
    "capacity_card",
    "capacity_json",
    "load_capacity_steps",
    "objective_limits",
    "run_card",
    "sweep_card",
    "write_capacity_json",
]

GENERATOR_LATE_LIMIT = 0.01  # as report/health.py: more late or dropped arrivals measure the generator


# ---- a sweep -----------------------------------------------------------------------------------------------


def capacity_card(data: RunData) -> CapacityCard | None:
    """The sweep card when the run has a capacity.csv, else the run card (None without the engine's sessions)."""
    steps = load_capacity_steps(data.run_dir)
    if steps is not None:
        return sweep_card(data, steps)
    card = run_card(data)
    if card is not None and data.manifest.kind == RunKind.SWEEP:
        card.notes.append(f"This sweep left no {CAPACITY_CSV} (stopped before its first step ended?): read as a run.")
    return card


def sweep_card(data: RunData, steps: pd.DataFrame, headroom: float = DEFAULT_HEADROOM) -> CapacityCard:
    """The capacity answer of a sweep from its steps (load_capacity_steps): USL fit, knee, SLO capacity in run
    and national terms, and the instances the scenario's national morning needs."""
    card = empty_card(data, "sweep", headroom)
    card.steps = steps
    sweep = data.manifest.sweep
    card.stop_margin = sweep.stop_margin if sweep is not None else None
    measured = card.measured_steps
    _fit(card, measured)
    _knee(card, measured)
    if data.scenario is not None:
        measures = {name: measured[column].tolist() for name, _, column in OBJECTIVES if name in card.limits}
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
            f"{_steps_text([int(s) for s in late['step']])}: more than {GENERATOR_LATE_LIMIT:.0%} of arrivals started "
            "late or were dropped, so those steps measured the load generator as much as the platform."
        )
    return card


def _fit(card: CapacityCard, measured: pd.DataFrame) -> None:
    """The USL fit of successful requests/s against people in a session; a failed fit leaves its message."""
    usable = measured[(measured["concurrency"] > 0) & (measured["successful_requests_per_s"] > 0)]
    left_out = [int(s) for s in measured["step"] if s not in set(usable["step"])]
    if left_out:
        card.notes.append(f"{_steps_text(left_out)} left out of the USL fit: nobody in a session or nothing served.")
    try:
        card.usl = fit_usl(usable["concurrency"].tolist(), usable["successful_requests_per_s"].tolist())
    except FitError as error:
        card.usl_error = str(error)
        return
    card.notes += [f"USL fit: {warning}." for warning in card.usl.warnings]


def _knee(card: CapacityCard, measured: pd.DataFrame) -> None:
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


def _national(card: CapacityCard, data: RunData) -> None:
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


# ---- capacity.json -----------------------------------------------------------------------------------------


def capacity_json(card: CapacityCard) -> dict[str, Any]:
    """The card as capacity.json: every figure in run terms, and in national terms where it has one."""
    out: dict[str, Any] = {
        "kind": card.kind,
        "scenario": card.scenario,
        "window": card.window,
        "scale": card.scale,
        "speed": card.speed,
        "load_fraction": card.load_fraction,
        "headroom": card.headroom,
        "objectives": card.limits,
        "headline": card.headline(),
        "notes": card.notes,
    }
    if card.kind == "sweep":
        fit = card.usl
        out["usl"] = fit.to_dict() if fit is not None else {"error": card.usl_error}
        if fit is not None:
            out["usl"]["peak_concurrency_national"] = card.national_people(fit.peak_concurrency)
            out["usl"]["peak_throughput_national"] = card.national_rate(fit.peak_throughput)
        out["knee"] = {
            "measure": card.knee_measure,
            "successful_requests_per_s": card.knee_requests_per_s,
            "successful_requests_per_s_national": card.national_rate(card.knee_requests_per_s),
            "latency_ms": card.knee_latency_ms,
        }
        if card.slo_requests is not None:
            out["slo_capacity"] = {
                **card.slo_requests.to_dict(),
                "successful_requests_per_s": card.slo_requests_per_s,
                "logins_per_s": card.slo_logins_per_s,
                "successful_requests_per_s_national": card.national_rate(card.slo_requests_per_s),
                "logins_per_s_national": card.national_rate(card.slo_logins_per_s),
            }
        out["national"] = card.national.to_dict() if card.national is not None else None
        out["steps"] = card.steps.to_dict("records") if card.steps is not None else []
        out["skipped_steps"] = card.steps_with(StepStatus.SKIPPED)
        out["incomplete_steps"] = card.steps_with(StepStatus.INCOMPLETE)
        out["stop_margin"] = card.stop_margin
    elif card.run is not None:
        run = card.run

        def load(value: RunLoad | None) -> dict[str, Any] | None:
            if value is None:
                return None
            return {
                "requests_per_s": value.requests_per_s,
                "logins_per_s": value.logins_per_s,
                "requests_per_s_national": card.national_rate(value.requests_per_s),
                "logins_per_s_national": card.national_rate(value.logins_per_s),
                "from": value.from_clock,
                "to": value.to_clock,
                "breaches": list(value.breaches),
            }

        out["run"] = {
            "bin_run_s": run.bin_run_s,
            "bin_scenario_s": run.bin_scenario_s,
            "bins": run.bins,
            "sustained_bins": SUSTAINED_BINS,
            "held": load(run.held),
            "broke": load(run.broke),
            "top": load(run.top),
            "window": run.window,
            "tried": run.tried,
            "tried_national": card.national_people(run.tried),
            "within_login_p95_objective": run.within_objective,
            "within_login_p95_objective_national": card.national_people(run.within_objective),
            "login_p95_objective_ms": run.objective_ms,
            "served": run.served.served if run.served else None,
            "served_share": run.served.share if run.served else None,
            "published_2021_share": PUBLISHED_2021_SHARE,
            "requests_source": run.requests_source,
        }
    from schoolsurge.report.platform_side import operational_laws_json  # (it imports this module's card)

    out["operational_laws"] = operational_laws_json(card)  # the platform's CPU bound, when its metrics were scraped
    return _jsonable(out)


def write_capacity_json(card: CapacityCard) -> Path:
    """capacity.json beside the report."""
    path = card.run_dir / CAPACITY_JSON
    write_json(path, capacity_json(card))
    return path


def _jsonable(value: Any) -> Any:
    """Plain JSON: numpy scalars to Python, NaN and infinities to null, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value
