"""The scaled and compressed schedule: who arrives when in a run, decided before the run starts.

Each group gets round(population x participation x scale) people. Their intended clock times are stratified
quantiles of the group's login-time curve truncated to the window: person k of n falls at quantile (k + U)/n,
U uniform in [0, 1), so the count in any stretch of the morning is within one of its expectation, per group.
Compression divides the time since the window's start by the speed. Same scenario, scale and seed: same schedule,
whatever the speed and however it is split between worker processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from schoolsurge.models.curves import window_cdf
from schoolsurge.models.population import logins_expected
from schoolsurge.scenario import Group, Scenario, Window


@dataclass(frozen=True, slots=True)
class Arrival:
    at_s: float  # intended start, run seconds since the test started (already compressed by speed)
    group: str  # scenario group name
    person: int  # index of this person within its group's scaled people, 0-based, unique per group


def people_at_scale(group: Group, scale: float) -> int:
    """People of the group a run at this scale simulates."""
    return round(logins_expected(group) * scale)


def intended_clock_times(group: Group, window: Window, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` login clock times (seconds since midnight), ascending, by stratified inverse-CDF sampling."""
    cdf = window_cdf(group.login_time, window)
    grid = np.arange(window.start_s, window.end_s + 1, dtype=float)
    quantiles = (np.arange(count) + rng.random(count)) / count
    return np.interp(quantiles, cdf, grid)


def check_scale_speed(scale: float, speed: float) -> None:
    if not 0 < scale <= 1:  # NaN fails this comparison too
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if not 0 < speed < math.inf:
        raise ValueError(f"speed must be a positive finite number, got {speed}")


def build_schedule(scenario: Scenario, scale: float, speed: float, seed: int) -> list[Arrival]:
    """Every arrival of a run, sorted by intended start (ties: group order, then person)."""
    check_scale_speed(scale, speed)
    if seed < 0:
        raise ValueError(f"seed must be zero or more, got {seed}")
    window = scenario.window
    keyed: list[tuple[float, int, int, Arrival]] = []
    for index, group in enumerate(scenario.groups):
        rng = np.random.default_rng([seed, index])  # one stream per group: adding a group moves no one else
        count = people_at_scale(group, scale)
        clocks = intended_clock_times(group, window, count, rng)
        # Person numbers are shuffled over the morning, so accounts (and their classes) are not in login order.
        persons = rng.permutation(count)
        for clock, person in zip(((clocks - window.start_s) / speed).tolist(), persons.tolist(), strict=True):
            keyed.append((clock, index, person, Arrival(clock, group.name, person)))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def split_schedule(schedule: list[Arrival], parts: int, index: int) -> list[Arrival]:
    """Part `index` of `parts` disjoint parts whose union is the schedule: round-robin by position, so every
    stretch of the run is shared out evenly (counts per part within one of each other)."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    if not 0 <= index < parts:
        raise ValueError(f"index must be in [0, {parts}), got {index}")
    return schedule[index::parts]
