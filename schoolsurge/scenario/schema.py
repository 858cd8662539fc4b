"""The scenario schema: a morning described in real-world terms (people, clock times, durations).

Pydantic models, frozen, unknown keys refused. Checks that need the whole scenario (a curve against the window,
an action against its persona) live in `schoolsurge.scenario.checks`. scenarios/README.md documents every field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from schoolsurge.scenario.clock import CLOCK_PATTERN, clock_to_seconds

Persona = Literal["student", "teacher", "parent"]
Backoff = Literal["exponential-full-jitter", "impatient-reload"]

# The pages each persona reads once logged in, as named in a group's behaviour mix (virtual classes are the
# group's `virtual_class` share, not part of the mix). Extend this table when a persona learns a new page.
ACTIONS: dict[str, frozenset[str]] = {
    "student": frozenset({"dashboard", "homework", "timetable", "messages", "homework-submit"}),
    "teacher": frozenset({"dashboard", "homework", "timetable", "messages", "homework-post"}),
    "parent": frozenset({"dashboard", "homework", "timetable", "messages"}),
}
# Who takes part in virtual classes: teachers open them, pupils join them.
VIRTUAL_CLASS_PERSONAS = frozenset({"teacher", "student"})
# The most people a count of the scenario may name (pupils, a group's population), and the fastest bot flood:
# eight times France's 12.7M pupils, far above any national school platform, and well within what the models
# hold (a schedule numbers a group's people on 32 bits; a run's rates stay finite numbers).
MAX_PEOPLE = 100_000_000
MAX_BOT_RATE_PER_S = 100_000_000


def _quoted_clock(value: object) -> object:
    # YAML 1.1 reads an unquoted 08:30 as the base-60 number 510: say so rather than "not a string".
    if isinstance(value, int | float):
        raise ValueError('expected a quoted clock time such as "08:30" (YAML reads an unquoted 08:30 as a number)')
    return value


ClockTime = Annotated[
    str, BeforeValidator(_quoted_clock), Field(pattern=CLOCK_PATTERN.pattern, description="HH:MM, quoted")
]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    """A stretch of the morning's clock, from start to end."""

    start: ClockTime
    end: ClockTime

    @property
    def start_s(self) -> int:
        return clock_to_seconds(self.start)

    @property
    def end_s(self) -> int:
        return clock_to_seconds(self.end)

    @property
    def duration_s(self) -> int:
        return self.end_s - self.start_s

    def contains(self, clock_s: float) -> bool:
        """True for a clock time inside the window, both ends included (an incident may end with it)."""
        return self.start_s <= clock_s <= self.end_s

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end_s <= self.start_s:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


# --- when people log in --------------------------------------------------------------------------------


class NormalLoginTime(Strict):
    """Login times spread normally around a clock time."""

    distribution: Literal["normal"]
    mean: ClockTime
    sd_minutes: float = Field(gt=0, description="standard deviation, minutes")

    @property
    def mean_s(self) -> int:
        return clock_to_seconds(self.mean)


class LognormalLoginTime(Strict):
    """Login times some log-normally distributed minutes after a clock time: a crowd, then a long tail."""

    distribution: Literal["lognormal"]
    after: ClockTime = Field(description="nobody logs in before this clock time")
    median_minutes: float = Field(gt=0, description="half of the group has logged in this long after `after`")
    sigma: float = Field(gt=0, le=3, description="shape: 0.3 a tight crowd, 1 a long tail")

    @property
    def after_s(self) -> int:
        return clock_to_seconds(self.after)


class EmpiricalLoginTime(Strict):
    """Login times from a table of (clock time, share of the group logged in by then), linear in between."""

    distribution: Literal["empirical"]
    cumulative: list[tuple[ClockTime, float]] = Field(min_length=2)

    @property
    def points_s(self) -> list[tuple[int, float]]:
        """(seconds since midnight, cumulative share) of each point."""
        return [(clock_to_seconds(clock), share) for clock, share in self.cumulative]

    @field_validator("cumulative")
    @classmethod
    def _is_a_cdf(cls, points: list[tuple[str, float]]) -> list[tuple[str, float]]:
        clocks = [clock_to_seconds(clock) for clock, _ in points]
        shares = [share for _, share in points]
        if any(b <= a for a, b in zip(clocks, clocks[1:], strict=False)):
            raise ValueError("clock times must increase from one point to the next")
        if any(b < a for a, b in zip(shares, shares[1:], strict=False)):
            raise ValueError("shares are cumulative: each must be at least the previous one")
        if shares[0] != 0 or abs(shares[-1] - 1) > 1e-9:
            raise ValueError(f"shares must go from 0 to 1, got {shares[0]} to {shares[-1]}")
        return points


LoginTime = Annotated[NormalLoginTime | LognormalLoginTime | EmpiricalLoginTime, Field(discriminator="distribution")]


# --- how long people stay and how they behave -------------------------------------------------------------


class SessionLength(Strict):
    """Time from login to leaving, in minutes of the scenario's clock."""

    distribution: Literal["exponential", "lognormal"]
    mean_minutes: float = Field(gt=0)
    sigma: float | None = Field(default=None, gt=0, le=3, description="lognormal shape; lognormal only")

    @model_validator(mode="after")
    def _sigma_for_lognormal_only(self) -> SessionLength:
        _check_sigma(self.distribution, self.sigma)
        return self


class ThinkTime(Strict):
    """Pause between two pages, in seconds of the scenario's clock."""

    distribution: Literal["exponential", "lognormal", "constant"]
    mean_seconds: float = Field(gt=0)
    sigma: float | None = Field(default=None, gt=0, le=3, description="lognormal shape; lognormal only")

    @model_validator(mode="after")
    def _sigma_for_lognormal_only(self) -> ThinkTime:
        _check_sigma(self.distribution, self.sigma)
        return self


def _check_sigma(distribution: str, sigma: float | None) -> None:
    if distribution == "lognormal" and sigma is None:
        raise ValueError("a lognormal distribution needs sigma (its shape, e.g. 0.8)")
    if distribution != "lognormal" and sigma is not None:
        raise ValueError(f"sigma applies only to a lognormal distribution, not to {distribution}")


class RetryPolicy(Strict):
    """What a person does when a login attempt fails, in seconds of the scenario's clock.

    exponential-full-jitter waits random(0, min(cap, base * 2**retry)) before retry number `retry` (0-based);
    impatient-reload waits random(base, cap) every time, without backing off. Either gives up after
    max_retries retries or once patience_seconds have passed since the first attempt.
    """

    backoff: Backoff
    base_seconds: float = Field(gt=0)
    cap_seconds: float = Field(gt=0)
    max_retries: int = Field(ge=0)
    patience_seconds: float = Field(gt=0, description="time since the first attempt after which a person gives up")

    @model_validator(mode="after")
    def _cap_above_base(self) -> RetryPolicy:
        if self.cap_seconds < self.base_seconds:
            raise ValueError(f"cap_seconds {self.cap_seconds} must be at least base_seconds {self.base_seconds}")
        return self


class Group(Strict):
    """People of one kind who log in that morning."""

    name: Slug
    persona: Persona
    population: int = Field(gt=0, le=MAX_PEOPLE, description="people in France (docs/facts.md#population)")
    source: str = Field(min_length=1, description="the docs/facts.md line the population comes from")
    participation: float = Field(gt=0, le=1, description="share of the population that logs in within the window")
    login_time: LoginTime
    session: SessionLength
    think: ThinkTime
    behaviour: dict[str, float] = Field(min_length=1, description="action -> weight, normalised to shares")
    retry: RetryPolicy
    virtual_class: float = Field(
        default=0, ge=0, le=1, description="share of the logins that open (teacher) or join (student) a virtual class"
    )

    @field_validator("behaviour")
    @classmethod
    def _weights(cls, mix: dict[str, float]) -> dict[str, float]:
        if any(weight < 0 for weight in mix.values()):
            raise ValueError("weights must be zero or more")
        if sum(mix.values()) <= 0:
            raise ValueError("at least one action needs a positive weight")
        return mix


# --- the timeline ---------------------------------------------------------------------------------------


class BotFlood(Window):
    """Bots hammer the login with wrong credentials between two clock times (a window of its own)."""

    kind: Literal["bot-flood"]
    national_rate_per_s: float = Field(
        gt=0, le=MAX_BOT_RATE_PER_S, description="login attempts per second at national scale"
    )


class CapacityLoss(Strict):
    """A share of the platform's capacity disappears at a clock time and may come back later."""

    kind: Literal["capacity-loss"]
    at: ClockTime
    restored_at: ClockTime | None = Field(default=None, description="omitted: not restored within the window")
    fraction: float = Field(gt=0, le=1, description="share of capacity lost")

    @property
    def at_s(self) -> int:
        return clock_to_seconds(self.at)

    @property
    def restored_s(self) -> int | None:
        return clock_to_seconds(self.restored_at) if self.restored_at is not None else None

    @model_validator(mode="after")
    def _ordered(self) -> CapacityLoss:
        if self.restored_at is not None and clock_to_seconds(self.restored_at) <= clock_to_seconds(self.at):
            raise ValueError(f"restored_at {self.restored_at} must be after at {self.at}")
        return self


Incident = Annotated[BotFlood | CapacityLoss, Field(discriminator="kind")]


# --- objectives, run defaults, embedded platform --------------------------------------------------------------


class Slo(Strict):
    """Service-level objectives, judged on `window` (default: the whole scenario window)."""

    window: Window | None = None
    login_p50_ms: float | None = Field(default=None, gt=0, description="median of the whole SSO login, ms")
    login_p95_ms: float = Field(gt=0, description="95th percentile of the whole SSO login, milliseconds")
    login_p99_ms: float | None = Field(default=None, gt=0, description="99th percentile of the whole SSO login, ms")
    error_ratio: float = Field(ge=0, le=1, description="error budget: failed requests / all requests")

    @model_validator(mode="after")
    def _percentiles_ordered(self) -> Slo:
        given = (("p50", self.login_p50_ms), ("p95", self.login_p95_ms), ("p99", self.login_p99_ms))
        values = [(name, value) for name, value in given if value is not None]
        for (low_name, low), (high_name, high) in zip(values, values[1:], strict=False):
            if high < low:
                raise ValueError(f"login_{high_name}_ms {high:g} must be at least login_{low_name}_ms {low:g}")
        return self


class RunDefaults(Strict):
    scale: float = Field(gt=0, le=1, description="fraction of people simulated")
    speed: float = Field(gt=0, description="time compression: scenario seconds per run second")
    seed: int = Field(default=2021, ge=0, description="seeds accounts and the schedule")


class EmbeddedPlatform(Strict):
    """How `schoolsurge run` sizes the embedded reference platform for this scenario."""

    hash_cost: int = Field(default=10, ge=4, le=16, description="bcrypt rounds")
    profile: Slug = Field(default="undersized-2021", description="capacity profile of the reference platform")


class Scenario(Strict):
    name: Slug
    description: str
    pupils: int = Field(gt=0, le=MAX_PEOPLE, description="pupils in France; sizes the platform's account roster")
    window: Window
    groups: list[Group] = Field(min_length=1)
    incidents: list[Incident] = Field(default_factory=list)
    slo: Slo
    run: RunDefaults
    platform: EmbeddedPlatform = EmbeddedPlatform()

    @field_validator("groups")
    @classmethod
    def _unique_names(cls, groups: list[Group]) -> list[Group]:
        names = [g.name for g in groups]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"group names must be unique, repeated: {', '.join(duplicates)}")
        return groups

    def group(self, name: str) -> Group:
        """The group of that name (KeyError if there is none)."""
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)

    @property
    def personas(self) -> frozenset[str]:
        """The personas of its groups: the roles a run needs accounts of."""
        return frozenset(group.persona for group in self.groups)

    @property
    def slo_window(self) -> Window:
        """The stretch of the morning the SLOs are judged on."""
        return self.slo.window or self.window

    @property
    def bot_floods(self) -> list[BotFlood]:
        return [i for i in self.incidents if isinstance(i, BotFlood)]

    @property
    def capacity_losses(self) -> list[CapacityLoss]:
        return [i for i in self.incidents if isinstance(i, CapacityLoss)]
