"""What every persona and the load shape need to know about the run, built once per Locust process."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.accounts import Roster
from schoolsurge.models.population import logins_expected
from schoolsurge.models.replay import Replay
from schoolsurge.scenario import Persona, load_scenario


@dataclass
class PersonaTiming:
    """Mean session length and think time of a persona, in run seconds (already compressed)."""

    session_s: float
    think_s: float


@dataclass
class SurgeContext:
    replay: Replay
    roster: Roster
    seed: int
    run_dir: Path | None
    timing: dict[Persona, PersonaTiming]
    rng: random.Random
    _next_account: dict[Persona, int] = field(default_factory=dict)

    def next_account(self, persona: Persona) -> int:
        """Index of the next account of a persona this process logs in with."""
        index = self._next_account.get(persona)
        if index is None:
            # A seeded random start spreads several worker processes over different accounts.
            index = self.rng.randrange(self.roster.count(persona))
        self._next_account[persona] = index + 1
        return index

    def session_length(self, persona: Persona) -> float:
        """A session length drawn around the persona's mean (exponential, as visit lengths are)."""
        mean = self.timing[persona].session_s
        return min(self.rng.expovariate(1 / mean), 4 * mean)

    def think_time(self, persona: Persona) -> float:
        return self.rng.expovariate(1 / self.timing[persona].think_s)


def build_context(options: Any, worker_index: int = 0) -> SurgeContext:
    """Build the run context from Locust's parsed options (--scenario, --scale, --speed, --seed)."""
    scenario = load_scenario(options.scenario)
    scale = options.scale if options.scale is not None else scenario.run.scale
    speed = options.speed if options.speed is not None else scenario.run.speed
    seed = options.seed if options.seed is not None else scenario.run.seed
    replay = Replay(scenario, scale, speed)
    timing: dict[Persona, PersonaTiming] = {}
    for persona in ("student", "teacher", "parent"):
        groups = [g for g in scenario.groups if g.persona == persona]
        weights = [logins_expected(g) for g in groups]
        total = sum(weights) or 1.0
        session_min = sum(g.session.mean_minutes * w for g, w in zip(groups, weights, strict=True)) / total
        think = sum(g.think.mean_seconds * w for g, w in zip(groups, weights, strict=True)) / total
        timing[persona] = PersonaTiming(
            session_s=replay.scenario_seconds(session_min * 60 or 600),
            think_s=replay.scenario_seconds(think or 30),
        )
    run_dir = Path(options.run_dir) if getattr(options, "run_dir", None) else None
    return SurgeContext(
        replay=replay,
        roster=Roster(seed, replay.platform_pupils),
        seed=seed,
        run_dir=run_dir,
        timing=timing,
        rng=random.Random(f"{seed}:{worker_index}"),
    )
