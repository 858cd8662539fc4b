"""The capacity sweep's option types (declared in the option table, options.py) and its parameters: a scale and
speed not given take the sweep's defaults, from its plan, not the scenario's."""

from __future__ import annotations

from typing import Any

from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.errors import ParameterError
from schoolsurge.models.sweep import SweepReplay, SweepSettings, default_scale_speed
from schoolsurge.parameters import RunParameters, checked, finite_number, resolve_parameters, whole_number
from schoolsurge.scenario import Scenario

sweep_steps = checked(whole_number, lambda v: v >= 2, "a sweep needs at least 2 steps", "--sweep-steps: 2 or more")
stop_margin = checked(
    finite_number, lambda v: v >= 1, "must be 1 or more (a factor of the objective)", "--sweep-stop-margin"
)
refine_within = checked(
    finite_number, lambda v: v > 0, "must be a positive fraction (0.1 is 10%)", "--sweep-refine-within, above 0"
)
refine_steps = checked(whole_number, lambda v: v >= 0, "must be 0 or more", "--sweep-refine-steps: 0 or more")

ADVICE = "change the sweep options (--sweep-*)"


def sweep_settings(given: dict[str, Any]) -> SweepSettings:
    """SweepSettings from the options given (SweepSettings' own defaults for the others)."""
    try:
        return SweepSettings(**given)
    except ValueError as error:
        raise ParameterError(f"{error}; {ADVICE}") from None


def resolve_sweep(
    scenario: Scenario,
    settings: SweepSettings,
    capacity: float | None,
    scale: float | None = None,
    speed: float | None = None,
    seed: int | None = None,
    late_after_s: float | None = None,
    drop_after_s: float | None = None,
) -> tuple[RunParameters, SweepReplay]:
    """The sweep's parameters (a scale and speed not given take the sweep's defaults, not the scenario's) and
    its replay."""
    try:
        default_scale, default_speed = default_scale_speed(scenario, settings, capacity)
    except ValueError as error:
        raise ParameterError(f"{error}; {ADVICE}") from None
    parameters = resolve_parameters(
        scenario,
        default_scale if scale is None else scale,
        default_speed if speed is None else speed,
        seed,
        late_after_s,
        drop_after_s,
    )
    try:
        replay = sweep_replay(scenario, settings, parameters.scale, parameters.speed, capacity)
    except ValueError as error:
        raise ParameterError(f"{error}; {ADVICE}") from None
    return parameters, replay
