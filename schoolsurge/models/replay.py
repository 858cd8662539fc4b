"""Scaling and time compression: how a run's seconds map onto the scenario's morning.

A run simulates `scale` of the people with the clock sped up `speed` times. People arrive speed times faster
but stay speed times shorter, so open sessions are scale x national; requests per second are scale x speed x
national: the run's load fraction. Dividing a run's request figures by it gives national figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from schoolsurge.models.population import NationalCurves, national_curves
from schoolsurge.models.schedule import (
    Arrival,
    ArrivalArrays,
    build_schedule,
    check_scale_speed,
    people_at_scale,
    schedule_part,
)
from schoolsurge.scenario import Group, Scenario


def load_fraction(scale: float, speed: float) -> float:
    """Share of the national request rate a run offers: `scale` of the people, each `speed` times faster. The one
    definition: a run's request figures divided by it are national figures."""
    return scale * speed


@dataclass(frozen=True)
class Replay:
    """A scenario replayed with a fraction of its people (scale) and its clock sped up (speed)."""

    scenario: Scenario
    scale: float
    speed: float

    def __post_init__(self) -> None:
        check_scale_speed(self.scale, self.speed)

    @property
    def duration_s(self) -> float:
        """Run seconds needed to replay the whole window."""
        return self.scenario.window.duration_s / self.speed

    @property
    def load_fraction(self) -> float:
        """Share of the national request rate this run offers (fewer people, each faster)."""
        return load_fraction(self.scale, self.speed)

    def clock_at(self, run_s: float) -> float:
        """Scenario clock (seconds since midnight) reached after run_s seconds of the run."""
        return self.scenario.window.start_s + run_s * self.speed

    @cached_property
    def national(self) -> NationalCurves:
        """The scenario's national curves, computed once per replay."""
        return national_curves(self.scenario)

    def concurrent_at(self, run_s: float) -> float:
        """Expected open sessions of this run after run_s seconds (scale x national at that clock)."""
        curves = self.national
        second = min(max(int(self.clock_at(run_s) - curves.start_s), 0), curves.seconds - 1)
        return float(sum(c[second] for c in curves.concurrent.values())) * self.scale

    def people_of(self, group: Group) -> int:
        """People of the group this run simulates: its accounts are that many, numbered from 0."""
        return people_at_scale(group, self.scale)

    @property
    def people(self) -> int:
        """People this run simulates (the schedule's length)."""
        return sum(self.people_of(group) for group in self.scenario.groups)

    def schedule(self, seed: int) -> list[Arrival]:
        """Every arrival of the run, sorted by intended start (schedule.py)."""
        return build_schedule(self.scenario, self.scale, self.speed, seed)

    def schedule_part(self, seed: int, parts: int = 1, index: int = 0) -> ArrivalArrays:
        """Part `index` of `parts` of the run's arrivals, round-robin by position in the whole run (schedule.py)."""
        return schedule_part(self.scenario, self.scale, self.speed, seed, parts, index)

    @property
    def platform_pupils(self) -> int:
        """Pupil accounts the embedded platform needs for this scale."""
        return max(1, round(self.scenario.pupils * self.scale))
