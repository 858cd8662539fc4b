"""Scenario files: a morning described in real-world terms, validated on load.

The schema is pydantic (unknown keys are errors); `load_scenario` is the only function here with I/O.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CLOCK_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
Persona = Literal["student", "teacher", "parent"]


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message is one line naming file, field and expectation."""


def clock_to_seconds(text: str) -> int:
    """'08:30' -> seconds since midnight."""
    match = CLOCK_PATTERN.match(text)
    if not match:
        raise ValueError(f"expected a clock time HH:MM, got {text!r}")
    return int(match[1]) * 3600 + int(match[2]) * 60


def seconds_to_clock(seconds: float) -> str:
    """Seconds since midnight -> 'HH:MM'."""
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ClockTime = Annotated[str, Field(pattern=CLOCK_PATTERN.pattern, description="HH:MM on the morning's clock")]


class Window(Strict):
    start: ClockTime
    end: ClockTime

    @property
    def start_s(self) -> int:
        return clock_to_seconds(self.start)

    @property
    def end_s(self) -> int:
        return clock_to_seconds(self.end)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end_s <= self.start_s:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class NormalLoginTime(Strict):
    """Login times spread normally around a clock time."""

    distribution: Literal["normal"]
    mean: ClockTime
    sd_minutes: float = Field(gt=0)

    @property
    def mean_s(self) -> int:
        return clock_to_seconds(self.mean)


class Group(Strict):
    """People of one kind who log in that morning."""

    name: str = Field(min_length=1)
    persona: Persona
    population: int = Field(gt=0, description="people in France (FACTS.md)")
    source: str = Field(min_length=1, description="the FACTS.md line the population comes from")
    participation: float = Field(gt=0, le=1, description="share of the population that logs in that morning")
    login_time: NormalLoginTime
    session_minutes: float = Field(gt=0, description="mean time logged in")
    think_seconds: float = Field(default=30, gt=0, description="mean pause between two pages")


class Slo(Strict):
    login_p95_ms: float = Field(gt=0, description="95th percentile of the whole SSO login, milliseconds")
    error_ratio: float = Field(ge=0, le=1, description="failed requests / all requests")


class RunDefaults(Strict):
    scale: float = Field(gt=0, le=1, description="fraction of people simulated")
    speed: float = Field(gt=0, description="time compression: scenario seconds per run second")
    seed: int = 2021


class EmbeddedPlatform(Strict):
    """How `schoolsurge run` sizes the embedded reference platform for this scenario."""

    hash_cost: int = Field(default=10, ge=4, le=16, description="bcrypt rounds")


class Scenario(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    pupils: int = Field(gt=0, description="pupils in France; sizes the platform's account roster")
    window: Window
    groups: list[Group] = Field(min_length=1)
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


def _field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def parse_scenario(data: object, origin: str = "<scenario>") -> Scenario:
    """Validate already-parsed data; raises ScenarioError with a one-line message."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: expected a mapping of scenario fields at the top level")
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        more = error.error_count() - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field; check the spelling against the schema in scenarios/README.md"
        got = first.get("input")
        got_text = f" (got {got!r})" if not isinstance(got, dict | list) and got is not None else ""
        raise ScenarioError(f"{origin}: {_field_path(first['loc'])}: {message}{got_text}{suffix}") from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read scenario file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ScenarioError(f"{path}: not valid YAML{where}; fix the syntax") from None
    return parse_scenario(data, str(path))
