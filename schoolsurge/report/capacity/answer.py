"""The capacity answer of a run, and capacity.json beside its report.

    card = capacity_card(data)        # a sweep's card from its capacity.csv, else a normal run's card (or None)
    write_run_answer(data, card, invalid)   # run_dir/capacity.json (every figure in run and national terms),
                                            # answer.json (invalid: the run's one validity judgement)

capacity.json holds what every card has (scenario, scale, speed, objectives, the headline sentences), the card's
own figures (SweepCard.answer, RunCard.answer) and, when the run scraped the target's metrics, the platform's
CPU bound by the operational laws.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schoolsurge.files import open_regular, readable
from schoolsurge.report.capacity.card import CapacityCard
from schoolsurge.report.capacity.run import run_card
from schoolsurge.report.capacity.run_answer import run_answer
from schoolsurge.report.capacity.sweep import sweep_card
from schoolsurge.report.load.capacity_steps import load_capacity_steps
from schoolsurge.report.load.json_fields import number_or_none, read_json_object
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.outcome.answer import Answer, write_answer
from schoolsurge.report.platform.series import read_series
from schoolsurge.rundir import CAPACITY_JSON, SESSIONS_CSV, TIMELINE, write_json
from schoolsurge.scenario import clock_to_seconds


def capacity_card(data: RunData) -> CapacityCard | None:
    """The sweep card when the run has a capacity.csv, else the run card (None without the engine's sessions)."""
    steps = load_capacity_steps(data.run_dir)
    if steps is not None:
        return sweep_card(data, steps)
    card = run_card(data)
    if card is not None:
        card.notes.extend(data.kind.without_steps_notes)
    return card


def capacity_json(card: CapacityCard) -> dict[str, Any]:
    """The card as capacity.json: every figure in run terms, and in national terms where it has one."""
    answer: dict[str, Any] = {
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
        **card.answer(),
    }
    answer["operational_laws"] = _operational_laws(card)  # the platform's CPU bound, when its metrics were scraped
    return _jsonable(answer)


def write_capacity_json(card: CapacityCard) -> dict[str, Any]:
    """capacity.json beside the report; returns what it holds."""
    figures = capacity_json(card)
    write_json(card.run_dir / CAPACITY_JSON, figures)
    return figures


def write_run_answer(data: RunData, card: CapacityCard | None, invalid: str | None) -> Answer:
    """capacity.json (when the run has a capacity card) and answer.json beside the report; `invalid`: why the run
    is invalid (Health.invalid_reason), None when it is valid."""
    figures = write_capacity_json(card) if card is not None else {}
    answer = run_answer(data, card, figures.get("operational_laws"), invalid)
    write_answer(data.run_dir, answer)
    return answer


def _operational_laws(card: CapacityCard) -> dict[str, Any] | None:
    """capacity.json's "operational_laws", from the card's run directory (None without the target's scrapes)."""
    run_dir = card.run_dir
    timeline = read_json_object(run_dir / TIMELINE)
    series = read_series(run_dir, number_or_none(timeline.get("test_start_unix")))
    if series is None:
        return None

    def sessions() -> pd.DataFrame | None:
        if not readable(run_dir / SESSIONS_CSV):
            return None
        with open_regular(run_dir / SESSIONS_CSV) as handle:
            return pd.read_csv(handle)

    try:
        clock_start: float | None = clock_to_seconds(str(timeline.get("window_start")))
    except ValueError:
        clock_start = None
    laws = card.operational_laws(series, sessions, card.speed, clock_start)
    if laws is None:
        return None
    figures = laws.to_json(card.national_rate)
    # The login-rate limit the platform said it admits (its gauge, run terms): what the answer names when it binds.
    limits = series.frame["login_rate_limit"].dropna() if "login_rate_limit" in series.frame else []
    finite = [float(v) for v in limits if math.isfinite(v)]
    figures["login_rate_limit_per_s"] = finite[-1] if finite else None
    return figures


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
