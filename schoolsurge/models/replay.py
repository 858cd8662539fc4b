"""Scaling and time compression: how a run's seconds map onto the scenario's morning."""

from __future__ import annotations

from dataclasses import dataclass

from schoolsurge.models.population import concurrent_by_persona
from schoolsurge.scenario import Scenario


@dataclass(frozen=True)
class Replay:
    """A scenario replayed with a fraction of its people (scale) and its clock sped up (speed)."""

    scenario: Scenario
    scale: float
    speed: float

    def __post_init__(self) -> None:
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale}")
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")

    @property
    def duration_s(self) -> float:
        """Run seconds needed to replay the whole window."""
        window = self.scenario.window
        return (window.end_s - window.start_s) / self.speed

    @property
    def load_fraction(self) -> float:
        """Share of the national request rate this run offers (fewer people, each faster)."""
        return self.scale * self.speed

    def clock_at(self, run_s: float) -> float:
        """Scenario clock (seconds since midnight) reached after run_s seconds of the run."""
        return self.scenario.window.start_s + run_s * self.speed

    def scenario_seconds(self, real_seconds: float) -> float:
        """A scenario duration (think time, session length) as run seconds."""
        return real_seconds / self.speed

    def users_at(self, run_s: float) -> int:
        """Simulated users the closed model holds after run_s seconds (compression keeps concurrency:
        arrivals come speed times faster but stay speed times shorter)."""
        by_persona = concurrent_by_persona(self.scenario, self.clock_at(run_s), self.scale)
        return round(sum(by_persona.values()))

    @property
    def platform_pupils(self) -> int:
        """Pupil accounts the embedded platform needs for this scale."""
        return max(1, round(self.scenario.pupils * self.scale))
