"""A capacity sweep: the scenario's people arriving at a constant rate per step, stepped up past saturation.

Each step offers a multiple of the scenario's national peak arrival rate (its plan), in run terms: multiple x
peak x load fraction. The people are the scenario's mix (each group's share of the morning's logins, with its
behaviours, session lengths and think times); the morning's clock, incidents and bots play no part.

A step is held `settle_s` before it is measured: with a constant arrival rate, people in a session approach
rate x mean session (Little's law) as the sessions begun at the previous rate end, so the settling time is a
few mean session lengths at the run's speed. Only the next `measure_s` seconds count.

Refinement: once the planned steps end (all run, or the stop rule ended them), the sweep bisects the range
between the highest step that held and the lowest that broke, one refinement step at a time, each at the
geometric middle of the range (`refine_level`), until the range is within `refine_within` of its lower end or
`refine_steps` have run. A refinement step's level is chosen at run time from the steps judged so far, so its
arrivals are made then (`refinement_arrays`), by every process from the same seed, step and level.

Defaults: 10 steps, geometric, from high/20 to `high`. `high` is 3x the target's expected capacity when it is
known (the embedded platform's profile, in national units) and 4x the scenario's peak otherwise. The load
fraction is chosen so that the top step asks TOP_REQUESTS_PER_S of the run's machine, which this 2-core machine
holds with the embedded platform on it; the speed so that the whole sweep (and seeding its accounts at bcrypt
cost 10) fits in about 8 minutes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from schoolsurge.models.population import logins_expected, national_curves
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import Arrival, ArrivalArrays, group_index_dtype
from schoolsurge.scenario import Group, Scenario

DEFAULT_STEPS = 10
DEFAULT_SPAN = 20.0  # highest step / lowest step
DEFAULT_HIGH_UNKNOWN = 4.0  # x the scenario's peak, when the target's capacity is unknown
DEFAULT_HIGH_OVER_CAPACITY = 3.0  # x the target's expected capacity, when known
DEFAULT_MEASURE_S = 16.0
DEFAULT_SETTLE_SESSIONS = 3.0
DEFAULT_SPEED = 150.0
DEFAULT_STOP_MARGIN = 5.0  # a step breaching an objective by this factor ends the sweep
DEFAULT_REFINE_WITHIN = 0.10  # bisect until (broke - held) / held is at most this
DEFAULT_REFINE_STEPS = 4  # at most this many refinement steps (a geometric plan's 40% halves in 2 or 3)
# The most time between two refinement steps: the step before is judged a few seconds after its end (the
# workers' last figures: engine/kinds/sweep.py JUDGE_AFTER_S) and the next starts a second or two later.
REFINE_GAP_S = 8.0
TOP_REQUESTS_PER_S = 250.0  # people's requests/s of the top step, run terms: what this machine holds
ACCOUNT_MARGIN = 1.5  # accounts per group: this many times its people in a session at the top step
ACCOUNT_FLOOR = 10

RosterPupils = Callable[[Mapping[str, int]], int]
"""The fewest pupils of a platform roster holding at least these accounts of each persona: the accounts' knowledge
(accounts.smallest_roster), handed to the sweep by whoever builds it (capacity_sweep.py)."""


@dataclass(frozen=True)
class SweepSettings:
    """The steps as multiples of the scenario's national peak arrival rate, and how long each is held."""

    steps: int = DEFAULT_STEPS
    low: float | None = None  # None: high / DEFAULT_SPAN
    high: float | None = None  # None: from the target's expected capacity, else DEFAULT_HIGH_UNKNOWN
    measure_s: float = DEFAULT_MEASURE_S
    settle_sessions: float = DEFAULT_SETTLE_SESSIONS
    stop_margin: float = DEFAULT_STOP_MARGIN
    linear: bool = False
    refine_within: float = DEFAULT_REFINE_WITHIN
    refine_steps: int = DEFAULT_REFINE_STEPS

    def __post_init__(self) -> None:
        if self.steps < 2:
            raise ValueError(f"a sweep needs at least 2 steps, got {self.steps}")
        for name in ("low", "high"):
            value = getattr(self, name)
            if value is not None and not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive multiple of the peak, got {value}")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if not 0 < self.measure_s < math.inf or not 0 <= self.settle_sessions < math.inf:
            raise ValueError("measure must be positive and settle zero or more")
        if not self.stop_margin >= 1:
            raise ValueError(f"the stop margin must be at least 1, got {self.stop_margin}")
        if not 0 < self.refine_within < math.inf:
            raise ValueError(f"the refinement width must be a positive fraction, got {self.refine_within}")
        if self.refine_steps < 0:
            raise ValueError(f"the refinement steps must be 0 or more, got {self.refine_steps}")

    def multiples(self, expected_capacity: float | None = None) -> tuple[float, ...]:
        """Each step's offered rate as a multiple of the scenario's national peak arrival rate."""
        high = self.high
        if high is None:
            high = DEFAULT_HIGH_OVER_CAPACITY * expected_capacity if expected_capacity else DEFAULT_HIGH_UNKNOWN
        low = self.low if self.low is not None else high / DEFAULT_SPAN
        if low >= high:
            raise ValueError(f"low ({low:g}) must be below high ({high:g})")
        spaced = np.linspace(low, high, self.steps) if self.linear else np.geomspace(low, high, self.steps)
        return tuple(float(m) for m in spaced)


def arrival_shares(scenario: Scenario) -> dict[str, float]:
    """Each group's share of the people who log in: the mix a sweep's arrivals follow."""
    expected = {group.name: logins_expected(group) for group in scenario.groups}
    total = sum(expected.values())
    return {name: value / total for name, value in expected.items()}


def mean_session_s(scenario: Scenario) -> float:
    """Mean session length over the mix, scenario seconds."""
    shares = arrival_shares(scenario)
    return sum(shares[group.name] * group.session.mean_minutes * 60 for group in scenario.groups)


def range_width(held: float, broke: float) -> float:
    """How wide a capacity range is: (broke - held) / held, as the answer's `within` says it."""
    return (broke - held) / held


def refine_level(held: float, broke: float) -> float:
    """The next refinement step's level: the geometric middle of the range, which halves its width in log terms
    (the plan's steps are geometric too)."""
    return math.sqrt(held * broke)


@dataclass(frozen=True)
class RefineStep:
    """A refinement step as the sweep chose it at run time: its number in capacity.csv (after the planned
    steps), its offered rate (run terms) and its bounds. What the master sends its workers (`to_wire`)."""

    step: int  # 0-based, counting the planned steps first
    rate: float  # offered arrivals per run second
    start_s: float
    first_person: tuple[int, ...]  # each group's (scenario order) first person number: accounts keep cycling

    def to_wire(self) -> dict[str, Any]:
        return {"step": self.step, "rate": self.rate, "start_s": self.start_s, "first_person": self.first_person}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> RefineStep:
        first = tuple(int(n) for n in data["first_person"])
        return cls(int(data["step"]), float(data["rate"]), float(data["start_s"]), first)


def default_load_fraction(national_peak_requests_per_s: float, high: float) -> float:
    """The load fraction at which the top step asks TOP_REQUESTS_PER_S of the machine."""
    return TOP_REQUESTS_PER_S / (high * national_peak_requests_per_s)


@dataclass(frozen=True)
class SweepReplay(Replay):
    """A replay whose arrivals come at a constant rate per step instead of following the morning's curve.
    It answers the engine's questions (duration, expected concurrency, people, accounts) for the sweep."""

    multiples: tuple[float, ...] = ()  # of the national peak arrival rate
    settle_s: float = 0.0
    measure_s: float = DEFAULT_MEASURE_S
    stop_margin: float = DEFAULT_STOP_MARGIN
    refine_within: float = DEFAULT_REFINE_WITHIN
    refine_steps: int = DEFAULT_REFINE_STEPS
    roster_pupils: RosterPupils = field(kw_only=True, compare=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.multiples) < 2:
            raise ValueError("a sweep needs at least 2 steps")

    @classmethod
    def of(
        cls,
        scenario: Scenario,
        settings: SweepSettings,
        scale: float,
        speed: float,
        roster_pupils: RosterPupils,
        expected_capacity: float | None = None,
    ) -> SweepReplay:
        """The sweep of a scenario at this scale and speed (its incidents left out: a sweep measures capacity)."""
        quiet = scenario.model_copy(update={"incidents": []})
        return cls(
            quiet,
            scale,
            speed,
            multiples=settings.multiples(expected_capacity),
            settle_s=settings.settle_sessions * mean_session_s(scenario) / speed,
            measure_s=settings.measure_s,
            stop_margin=settings.stop_margin,
            refine_within=settings.refine_within,
            refine_steps=settings.refine_steps,
            roster_pupils=roster_pupils,
        )

    @cached_property
    def national_peak_arrivals_per_s(self) -> float:
        """The scenario's highest national login rate, per second averaged over a minute (as `plan` says)."""
        curves = self.national
        return float(curves.per_minute(curves.total_arrivals()).max())

    @cached_property
    def rates(self) -> tuple[float, ...]:
        """Offered arrivals per run second of each step."""
        unit = self.national_peak_arrivals_per_s * self.load_fraction
        return tuple(m * unit for m in self.multiples)

    @property
    def step_s(self) -> float:
        return self.settle_s + self.measure_s

    @property
    def planned_s(self) -> float:
        """How long the planned steps last, run seconds."""
        return len(self.multiples) * self.step_s

    @property
    def duration_s(self) -> float:
        """The longest the sweep can run: its planned steps, then every refinement step, each begun once the one
        before is judged. People's sessions are cut only here (personas' window end), never in a refinement step."""
        return self.planned_s + self.refine_steps * (self.step_s + REFINE_GAP_S)

    def step_at(self, run_s: float) -> int:
        """The step running at run second run_s (the last one after the end)."""
        return min(max(int(run_s // self.step_s), 0), len(self.multiples) - 1)

    def step_bounds(self, step: int) -> tuple[float, float, float]:
        """(start, measured from, end) of a planned step, run seconds."""
        return self.bounds_from(step * self.step_s)

    def bounds_from(self, start: float) -> tuple[float, float, float]:
        """(start, measured from, end) of a step starting at run second `start`."""
        return start, start + self.settle_s, start + self.step_s

    def refinement_arrays(self, seed: int, step: RefineStep) -> ArrivalArrays:
        """The whole refinement step's arrivals, made as the planned steps' are (evenly spread, the mix drawn),
        from the seed and the step alone, so that every process makes the same. Each group's people continue
        from the step's `first_person` (cycling): nobody still in a session from the step before is sent again."""
        rng = np.random.default_rng([seed, 7919, step.step])
        names = tuple(group.name for group in self.scenario.groups)
        shares = arrival_shares(self.scenario)
        count = round(step.rate * self.step_s)
        times = step.start_s + (np.arange(count) + rng.random(count)) / step.rate
        group = rng.choice(len(names), size=count, p=np.array([shares[name] for name in names]))
        person = np.empty(count, dtype=np.uint32)
        for number, scenario_group in enumerate(self.scenario.groups):
            drawn = group == number
            first = step.first_person[number]
            person[drawn] = (first + np.arange(np.count_nonzero(drawn))) % self.people_of(scenario_group)
        return ArrivalArrays(times, group.astype(group_index_dtype(len(names))), person, names)

    def people_drawn(self, arrays: ArrivalArrays) -> tuple[int, ...]:
        """How many people of each group (scenario order) these arrivals draw: where the next step's continue."""
        counts = np.bincount(arrays.group.astype(np.int64), minlength=len(self.scenario.groups))
        return tuple(int(c) for c in counts)

    @cached_property
    def mean_session_run_s(self) -> float:
        return mean_session_s(self.scenario) / self.speed

    def concurrent_at(self, run_s: float) -> float:
        """Little's law at the step's rate: what people in a session settle to."""
        return self.rates[self.step_at(run_s)] * self.mean_session_run_s

    @cached_property
    def _group_people(self) -> dict[str, int]:
        """Accounts each group cycles through: enough that nobody is in two sessions at once at the top step."""
        shares = arrival_shares(self.scenario)
        top = max(self.rates)
        people = {}
        for group in self.scenario.groups:
            in_session = top * shares[group.name] * group.session.mean_minutes * 60 / self.speed
            people[group.name] = max(ACCOUNT_FLOOR, math.ceil(ACCOUNT_MARGIN * in_session) + 1)
        return people

    def people_of(self, group: Group) -> int:
        return self._group_people[group.name]

    @cached_property
    def people(self) -> int:
        return sum(round(rate * self.step_s) for rate in self.rates)

    @cached_property
    def accounts_needed(self) -> dict[str, int]:
        """Accounts of each persona the sweep's people cycle through (people_of, over the persona's groups)."""
        need = {"student": 0, "teacher": 0, "parent": 0}
        for group in self.scenario.groups:
            need[group.persona] += self.people_of(group)
        return need

    @cached_property
    def platform_pupils(self) -> int:
        """The smallest roster (in pupils; its teachers and parents follow) with enough accounts of every persona:
        every account is hashed when the platform is seeded, so no more than needed."""
        return self.roster_pupils(self.accounts_needed)

    def schedule_arrays(self, seed: int) -> ArrivalArrays:
        """Arrivals of every step, evenly spread at the step's rate (stratified: the k-th of a step falls at
        (k + U) / rate), each drawn from the mix; a group's people are reused in turn."""
        rng = np.random.default_rng([seed, 7919])
        names = tuple(group.name for group in self.scenario.groups)
        shares = arrival_shares(self.scenario)
        probabilities = np.array([shares[name] for name in names])
        times, groups = [np.empty(0)], [np.empty(0, dtype=np.int64)]
        for step, rate in enumerate(self.rates):
            start = step * self.step_s
            count = round(rate * self.step_s)
            offsets = (np.arange(count) + rng.random(count)) / rate if count else np.empty(0)
            groups.append(rng.choice(len(names), size=count, p=probabilities))
            times.append(start + offsets)
        group = np.concatenate(groups)
        person = np.empty(len(group), dtype=np.uint32)
        for number, scenario_group in enumerate(self.scenario.groups):
            drawn = group == number  # the k-th person drawn from a group is its person k, cycling
            person[drawn] = np.arange(np.count_nonzero(drawn)) % self.people_of(scenario_group)
        return ArrivalArrays(np.concatenate(times), group.astype(group_index_dtype(len(names))), person, names)

    def schedule_part(self, seed: int, parts: int = 1, index: int = 0) -> ArrivalArrays:
        """Part `index` of `parts` of the sweep's arrivals, round-robin by position (a sweep's schedule is
        small: every process computes it whole)."""
        return self.schedule_arrays(seed).round_robin(parts, index)

    def schedule(self, seed: int) -> list[Arrival]:
        """Every arrival of the sweep, in start order (schedule_arrays, as objects)."""
        return self.schedule_arrays(seed).to_list()


def default_scale_speed(
    scenario: Scenario, settings: SweepSettings, expected_capacity: float | None = None
) -> tuple[float, float]:
    """(scale, speed) of a sweep by default: DEFAULT_SPEED, and the scale whose top step asks
    TOP_REQUESTS_PER_S of the machine."""
    curves = national_curves(scenario)
    high = settings.multiples(expected_capacity)[-1]
    fraction = default_load_fraction(float(curves.total_requests().max()), high)
    return min(1.0, fraction / DEFAULT_SPEED), DEFAULT_SPEED


__all__ = [
    "RefineStep",
    "SweepReplay",
    "SweepSettings",
    "arrival_shares",
    "default_load_fraction",
    "default_scale_speed",
    "mean_session_s",
    "range_width",
    "refine_level",
]
