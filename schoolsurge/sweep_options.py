"""The capacity sweep's options, shared by `schoolsurge capacity` (which passes them on) and the locustfile
(`locust -f locustfiles/surge.py --sweep-steps 10 ...` runs a sweep too). A run is a sweep when --sweep-steps
is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.errors import ParameterError
from schoolsurge.models.sweep import (
    DEFAULT_MEASURE_S,
    DEFAULT_SETTLE_SESSIONS,
    DEFAULT_STEPS,
    DEFAULT_STOP_MARGIN,
    SweepReplay,
    SweepSettings,
    default_scale_speed,
)
from schoolsurge.parameters import (
    RunParameters,
    checked,
    finite_number,
    positive_number,
    resolve_parameters,
    whole_number,
)
from schoolsurge.parameters import number_at_least_zero as at_least_zero
from schoolsurge.scenario import Scenario

sweep_steps = checked(whole_number, lambda v: v >= 2, "a sweep needs at least 2 steps", "--sweep-steps: 2 or more")
stop_margin = checked(
    finite_number, lambda v: v >= 1, "must be 1 or more (a factor of the objective)", "--sweep-stop-margin"
)


@dataclass(frozen=True)
class SweepOption:
    flag: str
    field: str
    type: Callable[[str], Any]
    help: str


SWEEP_OPTIONS = (
    SweepOption("--sweep-steps", "steps", sweep_steps, f"load steps of a capacity sweep (default {DEFAULT_STEPS})"),
    SweepOption("--sweep-low", "low", positive_number, "lowest step, x the scenario's national peak arrival rate"),
    SweepOption("--sweep-high", "high", positive_number, "highest step, x the scenario's national peak arrival rate"),
    SweepOption(
        "--sweep-measure",
        "measure_s",
        positive_number,
        f"seconds measured per step, once settled ({DEFAULT_MEASURE_S:g})",
    ),
    SweepOption(
        "--sweep-settle",
        "settle_sessions",
        at_least_zero,
        f"settling time per step, in mean session lengths at the run's speed ({DEFAULT_SETTLE_SESSIONS:g})",
    ),
    SweepOption(
        "--sweep-stop-margin",
        "stop_margin",
        stop_margin,
        f"stop once a step breaches an objective by this factor ({DEFAULT_STOP_MARGIN:g})",
    ),
    SweepOption(
        "--sweep-capacity",
        "",
        positive_number,
        "expected capacity of the target, x the scenario's peak (sets the default highest step to 3x it)",
    ),
)


def add_sweep_arguments(add_argument: Callable[..., Any]) -> None:
    for option in SWEEP_OPTIONS:
        add_argument(option.flag, type=option.type, default=None, help=option.help)
    add_argument("--sweep-linear", action="store_true", default=False, help="linear steps (default: geometric)")


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")


def sweep_settings(options: Any) -> SweepSettings | None:
    """The sweep the options ask for, None when they ask for none (no --sweep-steps)."""
    steps = getattr(options, "sweep_steps", None)
    if steps is None:
        return None
    given = {o.field: getattr(options, _dest(o.flag), None) for o in SWEEP_OPTIONS if o.field}
    try:
        return SweepSettings(
            linear=bool(getattr(options, "sweep_linear", False)),
            **{name: value for name, value in given.items() if value is not None},
        )
    except ValueError as error:
        raise ParameterError(f"{error}; change the --sweep-* options") from None


def expected_capacity(options: Any) -> float | None:
    return getattr(options, "sweep_capacity", None)


def forwarded_sweep_arguments(settings: SweepSettings, capacity: float | None) -> list[str]:
    """The sweep as locust command-line arguments (schoolsurge capacity -> locust)."""
    arguments = ["--sweep-steps", str(settings.steps)]
    for option in SWEEP_OPTIONS:
        value = getattr(settings, option.field) if option.field else capacity
        if option.field != "steps" and value is not None:
            arguments += [option.flag, repr(value)]
    if settings.linear:
        arguments.append("--sweep-linear")
    return arguments


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
        raise ParameterError(f"{error}; change the --sweep-* options") from None
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
        raise ParameterError(f"{error}; change the --sweep-* options") from None
    return parameters, replay
