"""The platform's knobs: built-in defaults, two named capacity profiles, environment variables and options.

Precedence, highest first: a command-line option, its SCHOOLSURGE_* environment variable, the chosen
profile (`--profile` / SCHOOLSURGE_PROFILE, default `undersized-2021`), the built-in default below.
docs/platform.md says what each knob does to capacity.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PROFILE = "undersized-2021"


@dataclass(frozen=True)
class Settings:
    # ---- capacity ---------------------------------------------------------------------------------
    workers: int = 1  # server processes sharing one listening socket
    hash_cost: int = 10  # bcrypt rounds: each +1 doubles the CPU time of a login
    max_in_flight: int = 8  # requests a worker serves at once (its thread pool works on at most this many)
    queue_length: int = 32  # requests a worker holds waiting for a slot; beyond: 503 + Retry-After at once
    queue_timeout: float = 5.0  # seconds a request may wait in the queue before it is shed with a 503
    db_timeout: float = 5.0  # seconds a write waits for SQLite's lock before the request fails with a 503
    session_idle: float = 3600.0  # ENT sessions expire after 1 hour idle (docs/facts.md#timing-and-behaviour)
    room_capacity: int = 40  # people in one virtual class, waiting room included
    # ---- security ---------------------------------------------------------------------------------
    login_flow_ttl: float = 300.0  # an execution token (login form) is valid 5 minutes
    ticket_ttl: float = 30.0  # a service ticket is valid 30 seconds
    throttle_failures: int = 5  # wrong passwords for one account within throttle_window ...
    throttle_window: float = 300.0  # ... lock further attempts on it (429) until the oldest one ages out
    # ---- internal ---------------------------------------------------------------------------------
    session_touch_interval: float = 60.0  # sliding expiry refreshed at most this often: reads do not each write
    purge_probability: float = 0.01  # share of login forms that also purge expired rows
    retry_after: int = 1  # seconds, the Retry-After of a shed request

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        return cls(**data)


# What a 2021 regional ENT had (one small application server for a whole academy, sized for a normal
# Monday) against what it would have needed. Measured figures behind these numbers: docs/platform.md.
PROFILES: dict[str, dict[str, Any]] = {
    # One slot: a login's bcrypt holds every page behind it, as a single-threaded legacy back end would.
    "undersized-2021": {"workers": 1, "hash_cost": 10, "max_in_flight": 1, "queue_length": 8, "queue_timeout": 1.0},
    "resized": {"workers": 2, "hash_cost": 10, "max_in_flight": 16, "queue_length": 128, "queue_timeout": 10.0},
}


@dataclass(frozen=True)
class Knob:
    field: str
    help: str
    parse: Callable[[str], Any]

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-")

    @property
    def env(self) -> str:
        return "SCHOOLSURGE_" + self.field.upper()


def _number_in(
    cast: Callable[[str], float], low: float, high: float, what: str, unit: str = ""
) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not low <= value <= high:
            show = str if cast is int else "{:g}".format
            raise argparse.ArgumentTypeError(f"must be between {show(low)} and {show(high)}{unit}, got {show(value)}")
        return value

    return parse


def int_in(low: int, high: int) -> Callable[[str], int]:
    return _number_in(int, low, high, "a whole number")


def seconds(low: float = 0.001, high: float = 7 * 24 * 3600) -> Callable[[str], float]:
    return _number_in(float, low, high, "a number of seconds", " seconds")


KNOBS = (
    Knob("workers", "server processes sharing the listening socket", int_in(1, 64)),
    Knob("hash_cost", "bcrypt rounds of the password hashes (each +1 doubles a login's CPU)", int_in(4, 16)),
    Knob("max_in_flight", "requests served at once by each worker", int_in(1, 1024)),
    Knob("queue_length", "requests each worker holds waiting; beyond it: 503 with Retry-After", int_in(0, 100_000)),
    Knob("queue_timeout", "seconds a request may wait in the admission queue before a 503", seconds()),
    Knob("db_timeout", "seconds a write waits for the database lock before a 503", seconds()),
    Knob("session_idle", "session lifetime: seconds a session lives without a request", seconds()),
    Knob("room_capacity", "people in one virtual class, waiting room included", int_in(1, 100_000)),
    Knob("login_flow_ttl", "seconds a login form's execution token stays valid", seconds()),
    Knob("ticket_ttl", "seconds a CAS service ticket stays valid", seconds()),
    Knob("throttle_failures", "wrong passwords per account within the window that lock it (429)", int_in(1, 1000)),
    Knob("throttle_window", "seconds over which failed logins of one account are counted", seconds()),
)


def add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help=f"capacity profile (env SCHOOLSURGE_PROFILE, default {DEFAULT_PROFILE}); options below override it",
    )
    for knob in KNOBS:
        parser.add_argument(knob.flag, type=knob.parse, default=None, help=f"{knob.help} (env {knob.env})")


class SettingsError(ValueError):
    """A knob set to something unusable; the message is one line naming it."""


def resolve(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> tuple[str, Settings]:
    """(profile name, settings) from parsed options, the environment and the profile."""
    env = os.environ if environ is None else environ
    profile = args.profile or env.get("SCHOOLSURGE_PROFILE") or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise SettingsError(f"SCHOOLSURGE_PROFILE={profile!r} is not a profile; use one of {', '.join(PROFILES)}")
    values = dict(PROFILES[profile])
    for knob in KNOBS:
        explicit = getattr(args, knob.field, None)
        if explicit is not None:
            values[knob.field] = explicit
        elif knob.env in env:
            try:
                values[knob.field] = knob.parse(env[knob.env])
            except argparse.ArgumentTypeError as error:
                raise SettingsError(f"{knob.env}: {error}") from None
    return profile, Settings(**values)
