"""A run's parameters, resolved once from the scenario and the options: scale, speed, seed, lateness limits.

`resolve_parameters` is the one place where an option left unset falls back to the scenario's value or to the
defaults below; the run spec (spec.py), `plan` and the capacity sweep call it. It refuses what the models cannot
replay: a scale so small that nobody is simulated, a speed so high that the window passes in less than MIN_RUN_S.
The argparse types at the end check an option as it is parsed (options.py), so a bad value is refused (one line,
exit 2) before anything starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from schoolsurge.errors import ParameterError
from schoolsurge.models.population import logins_expected
from schoolsurge.models.replay import load_fraction
from schoolsurge.models.schedule import people_at_scale
from schoolsurge.scenario import Scenario

Number = TypeVar("Number", int, float)

LATE_AFTER_S = 1.0  # an arrival that starts more than this after its intended time is counted late
DROP_AFTER_S = 60.0  # one that would start more than this late is dropped (counted, never started)
# After a morning's window, how long (wall seconds) sessions still running may take before the test ends: the
# run's only limit on requests still outstanding then (--drain-limit).
DRAIN_LIMIT_S = 30.0
# The shortest replay of a scenario's window: every figure of a run is per second, so a run needs a second at
# least (and the rates, national x scale x speed, stay finite: speed is at most the window's seconds).
MIN_RUN_S = 1.0


@dataclass(frozen=True)
class RunParameters:
    """How a scenario is replayed: `scale` of its people, its clock sped up `speed` times."""

    scale: float
    speed: float
    seed: int
    late_after_s: float = LATE_AFTER_S
    drop_after_s: float = DROP_AFTER_S

    @property
    def load_fraction(self) -> float:
        """Share of the national request rate the run offers (fewer people, each faster)."""
        return load_fraction(self.scale, self.speed)


def resolve_parameters(
    scenario: Scenario,
    scale: float | None = None,
    speed: float | None = None,
    seed: int | None = None,
    late_after_s: float | None = None,
    drop_after_s: float | None = None,
) -> RunParameters:
    """The run's parameters: each given value, else the scenario's (scale, speed, seed), else the default.
    Raises ParameterError naming the first value out of range, or one the scenario cannot be replayed at."""
    parameters = RunParameters(
        scale=scenario.run.scale if scale is None else scale,
        speed=scenario.run.speed if speed is None else speed,
        seed=scenario.run.seed if seed is None else seed,
        late_after_s=LATE_AFTER_S if late_after_s is None else late_after_s,
        drop_after_s=DROP_AFTER_S if drop_after_s is None else drop_after_s,
    )
    check_parameters(parameters)
    check_replayable(scenario, parameters)
    return parameters


def scale_in_range(scale: float) -> bool:
    """A scale is a fraction of the people: in (0, 1]. NaN is not (it fails every comparison)."""
    return 0 < scale <= 1


SCALE_RANGE = "in (0, 1] (a fraction of the people)"


def check_parameters(parameters: RunParameters) -> None:
    if not scale_in_range(parameters.scale):
        raise ParameterError(f"scale must be {SCALE_RANGE}, got {parameters.scale}")
    if not 0 < parameters.speed < math.inf:
        raise ParameterError(f"speed must be a finite number above 0, got {parameters.speed}")
    if parameters.seed < 0:
        raise ParameterError(f"seed must be 0 or more, got {parameters.seed}")
    for name in ("late_after_s", "drop_after_s"):
        value = getattr(parameters, name)
        if not 0 <= value < math.inf:
            raise ParameterError(f"{name} must be a finite number of seconds, 0 or more, got {value}")


def check_replayable(scenario: Scenario, parameters: RunParameters) -> None:
    """Refuse a scale at which nobody of the scenario is simulated, and a speed that replays its window in less
    than MIN_RUN_S; each message gives the bound to use instead."""
    if sum(people_at_scale(group, parameters.scale) for group in scenario.groups) == 0:
        # One person in the largest group: round(logins x scale) >= 1 from scale 1 / logins (2 digits: +-5%).
        smallest = 1 / max(logins_expected(group) for group in scenario.groups)
        raise ParameterError(
            f"--scale {parameters.scale:g} simulates nobody of scenario {scenario.name}; "
            f"give --scale {smallest:.2g} or more (one person at least)"
        )
    window = scenario.window
    fastest = window.duration_s / MIN_RUN_S
    if parameters.speed > fastest:
        raise ParameterError(
            f"--speed {parameters.speed:g} replays the window {window.start}-{window.end} of scenario "
            f"{scenario.name} in less than {MIN_RUN_S:g} s; give --speed {fastest:g} or less"
        )


# ---- argparse types --------------------------------------------------------------------------------------


def finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def checked(
    parse: Callable[[str], Number], holds: Callable[[Number], bool], expected: str, doc: str
) -> Callable[[str], Number]:
    """An argparse type: `parse` the text, then refuse a value for which `holds` is false, saying what is
    `expected` (e.g. "must be 1 or more")."""

    def argument_type(text: str) -> Number:
        value = parse(text)
        if not holds(value):
            raise argparse.ArgumentTypeError(f"{expected}, got {text}")
        return value

    argument_type.__doc__ = doc
    return argument_type


scale_fraction = checked(finite_number, scale_in_range, f"must be {SCALE_RANGE}", "--scale, in (0, 1]")
speed_factor = checked(
    finite_number, lambda v: v > 0, "must be above 0 (scenario seconds per run second)", "--speed, above 0"
)
seconds_at_least_zero = checked(
    finite_number, lambda v: v >= 0, "must be a number of seconds, 0 or more", "a duration in seconds, 0 or more"
)
seed_number = checked(whole_number, lambda v: v >= 0, "must be 0 or more", "--seed: a whole number, 0 or more")
process_count = checked(whole_number, lambda v: v >= 1, "must be 1 or more", "--processes: 1 or more")
drain_seconds = checked(
    finite_number, lambda v: v > 0, "must be a number of seconds above 0", "--drain-limit: seconds, above 0"
)
positive_number = checked(finite_number, lambda v: v > 0, "must be above 0", "a number above 0")
number_at_least_zero = checked(finite_number, lambda v: v >= 0, "must be 0 or more", "a number, 0 or more")
