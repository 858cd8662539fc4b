"""The platform's knobs: built-in defaults, two named capacity profiles, environment variables and options.

Precedence, highest first: a command-line option, its SCHOOLSURGE_* environment variable, the chosen
profile (`--profile` / SCHOOLSURGE_PROFILE, default `undersized-2021`), the built-in default below.
docs/platform.md says what each knob does to capacity.

Two kinds of capacity knobs. Machine-level ones (workers, slots, queue, bcrypt cost) say how this process
serves; the profiles set them generously. National ones (`national_*`, `login_timeout`, `request_timeout`,
`session_idle`) say what the whole national service could take, in national units and scenario seconds; the
platform scales them to the run it stands in for (`run_scale` of the people, the clock `run_speed` times
faster): a rate x run_scale x run_speed, a number of sessions x run_scale, a duration / run_speed. The `run_*`
properties of Settings are those run-level values, and the only ones the platform enforces.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PROFILE = "undersized-2021"
# The single sign-on protocols the platform serves, one at a time (`--sso`): CAS 3.0 at /cas, or an OpenID
# Provider at /oidc (docs/platform.md). The run's client speaks the same one (clients/options.py).
SSO_PROTOCOLS = ("cas", "oidc")


@dataclass(frozen=True)
class Settings:
    # ---- capacity ---------------------------------------------------------------------------------
    workers: int = 1  # server processes sharing one listening socket
    hash_cost: int = 10  # bcrypt rounds: each +1 doubles the CPU time of a login
    max_in_flight: int = 8  # requests a worker serves at once (its thread pool works on at most this many)
    queue_length: int = 32  # requests a worker holds waiting for a slot; beyond: 503 + Retry-After at once
    queue_timeout: float = 5.0  # seconds a request may wait in the queue before it is shed with a 503
    db_timeout: float = 5.0  # seconds a write waits for SQLite's lock before the request fails with a 503
    session_idle: float = 3600.0  # scenario seconds: 1 hour idle ends a session (docs/facts.md#timing-and-behaviour)
    room_capacity: int = 40  # people in one virtual class, waiting room included
    # ---- capacity in national units: the profile's limits (None: unlimited) -----------------------------
    national_login_rate: float | None = None  # credential submissions per second the national service admits
    national_request_rate: float | None = None  # requests per second admitted (operators' endpoints aside)
    national_sessions: int | None = None  # ENT sessions held at once; a login beyond: 503 at once
    login_timeout: float = 30.0  # scenario seconds a login waits for a login token before a 503
    request_timeout: float = 30.0  # scenario seconds a request waits for a request token before a 503
    # ---- the run the platform stands in for ----------------------------------------------------------
    run_scale: float = 1.0  # share of the national population the run replays (1: the national platform)
    run_speed: float = 1.0  # how many times faster than the scenario's clock the run goes
    # ---- security ---------------------------------------------------------------------------------
    sso: str = "cas"  # the single sign-on protocol served: cas (/cas) or oidc (an OpenID Provider at /oidc)
    login_flow_ttl: float = 300.0  # an execution token (login form) is valid 5 minutes
    ticket_ttl: float = 30.0  # a service ticket is valid 30 seconds
    code_ttl: float = 60.0  # an OpenID Connect authorization code is valid 60 seconds
    # Wrong passwords (sso.py): past throttle_failures for one account from one address, or
    # account_throttle_failures from all addresses together, within throttle_window, each further attempt waits
    # (429) after the latest one: 1 s, doubled at each wrong password, at most throttle_max_delay. Never a lock.
    throttle_failures: int = 5
    account_throttle_failures: int = 10
    throttle_window: float = 300.0
    throttle_max_delay: float = 60.0
    # ---- internal ---------------------------------------------------------------------------------
    session_touch_interval: float = 60.0  # sliding expiry refreshed at most this often: reads do not each write
    purge_probability: float = 0.01  # share of login forms that also purge expired rows
    retry_after: int = 1  # seconds, the Retry-After of a shed request
    throttle_first_delay: float = 1.0  # seconds, the first wait of the slow-down on wrong passwords

    # ---- run-level values: what this platform enforces ---------------------------------------------
    @property
    def load_fraction(self) -> float:
        """The run's rates over the national ones: run_scale x run_speed."""
        return self.run_scale * self.run_speed

    @property
    def run_login_rate(self) -> float | None:
        """Logins per second this platform admits, all workers (None: unlimited)."""
        return None if self.national_login_rate is None else self.national_login_rate * self.load_fraction

    @property
    def run_request_rate(self) -> float | None:
        """Requests per second this platform admits, all workers (None: unlimited)."""
        return None if self.national_request_rate is None else self.national_request_rate * self.load_fraction

    @property
    def run_sessions(self) -> int | None:
        """Live sessions this platform holds at most (None: unlimited); at least one."""
        if self.national_sessions is None:
            return None
        return max(1, math.floor(self.national_sessions * self.run_scale + 0.5))

    @property
    def run_login_timeout(self) -> float:
        return self.login_timeout / self.run_speed

    @property
    def run_request_timeout(self) -> float:
        return self.request_timeout / self.run_speed

    @property
    def run_session_idle(self) -> float:
        return self.session_idle / self.run_speed

    @property
    def run_session_touch_interval(self) -> float:
        return self.session_touch_interval / self.run_speed

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Settings:
        return cls(**data)


# What the 2021 national ENT services had (sized for an ordinary Monday) against what they would have needed.
# Two parts per profile:
#   - machine-level knobs (workers, slots, queue, bcrypt cost): how this process serves. Generous on purpose,
#     so that on this 2-core machine they do not bind at the default run (~7 logins/s, ~200 requests/s at the
#     surge's peak) nor at 3x that: the profile's national limits below bind first;
#   - NATIONAL UNITS (the limits that bind): logins and requests per second of the whole national service,
#     ENT sessions held at once nationally, and waits in scenario seconds. Scaled to the run the platform
#     stands in for (--run-scale, --run-speed): rates x scale x speed, sessions x scale, durations / speed.
#     For reference, the first-day scenario's national demand at its peak: 1,846 logins/s, 54,354
#     requests/s, 1.57M open sessions (docs/facts.md). Calibration: docs/platform.md, "Capacity in national
#     units" (these values may change with it).
MACHINE_KNOBS: dict[str, dict[str, Any]] = {
    "undersized-2021": {"workers": 1, "hash_cost": 10, "max_in_flight": 8, "queue_length": 256, "queue_timeout": 30.0},
    "resized": {"workers": 2, "hash_cost": 10, "max_in_flight": 16, "queue_length": 512, "queue_timeout": 30.0},
}
NATIONAL_LIMITS: dict[str, dict[str, Any]] = {
    # Admits 380 logins/s nationally against a peak demand of 1,846: slow, then failing. Calibrated so that
    # the first day serves 37% of the people due 08:00-10:00, as in 2021 (models/calibration.py;
    # docs/platform.md, "Calibration of undersized-2021").
    "undersized-2021": {
        "national_login_rate": 380.0,
        "national_request_rate": 60_000.0,
        "national_sessions": None,
        "login_timeout": 30.0,
        "request_timeout": 30.0,
    },
    # Room for about twice the peak's logins and three times its requests; at most 3M sessions at once.
    "resized": {
        "national_login_rate": 4_000.0,
        "national_request_rate": 150_000.0,
        "national_sessions": 3_000_000,
        "login_timeout": 30.0,
        "request_timeout": 30.0,
    },
}
PROFILES: dict[str, dict[str, Any]] = {name: {**MACHINE_KNOBS[name], **NATIONAL_LIMITS[name]} for name in MACHINE_KNOBS}


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


class _Unlimited:
    """What `unlimited` parses to: an explicit "no limit", which overrides a profile's (stored as None)."""

    def __repr__(self) -> str:
        return "unlimited"


UNLIMITED: Any = _Unlimited()


def sso_protocol(text: str) -> str:
    """A single sign-on protocol of SSO_PROTOCOLS."""
    if text not in SSO_PROTOCOLS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(SSO_PROTOCOLS)}, got {text!r}")
    return text


def _finite(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def run_scale(text: str) -> float:
    """The share of the national population a run replays: more than 0, at most 1."""
    value = _finite(text, "a share of the population (0 < scale <= 1)")
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1, got {value:g}")
    return value


def run_speed(text: str) -> float:
    """How many times faster than the scenario's clock a run goes: more than 0."""
    value = _finite(text, "a speed-up factor (> 0)")
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value:g}")
    return value


def rate_or_unlimited(what: str) -> Callable[[str], Any]:
    """A rate per second (more than 0, finite) or `unlimited`."""

    def parse(text: str) -> Any:
        if text.strip().lower() in ("unlimited", "none"):
            return UNLIMITED
        value = _finite(text, f"{what} per second or 'unlimited'")
        if value <= 0.0:
            raise argparse.ArgumentTypeError(f"must be more than 0 (or 'unlimited'), got {value:g}")
        return value

    return parse


def count_or_unlimited(low: int, high: int) -> Callable[[str], Any]:
    whole = int_in(low, high)

    def parse(text: str) -> Any:
        return UNLIMITED if text.strip().lower() in ("unlimited", "none") else whole(text)

    return parse


KNOBS = (
    Knob("workers", "server processes sharing the listening socket", int_in(1, 64)),
    Knob("hash_cost", "bcrypt rounds of the password hashes (each +1 doubles a login's CPU)", int_in(4, 16)),
    Knob("max_in_flight", "requests served at once by each worker", int_in(1, 1024)),
    Knob("queue_length", "requests each worker holds waiting; beyond it: 503 with Retry-After", int_in(0, 100_000)),
    Knob("queue_timeout", "seconds a request may wait in the admission queue before a 503", seconds()),
    Knob("db_timeout", "seconds a write waits for the database lock before a 503", seconds()),
    Knob(
        "session_idle",
        "session lifetime: scenario seconds a session lives without a request; run level: / run speed",
        seconds(),
    ),
    Knob("room_capacity", "people in one virtual class, waiting room included", int_in(1, 100_000)),
    Knob(
        "sso",
        "single sign-on protocol: cas (CAS 3.0 at /cas, the default) or oidc (OpenID Connect at /oidc)",
        sso_protocol,
    ),
    Knob("login_flow_ttl", "seconds a login form's execution token stays valid", seconds()),
    Knob("ticket_ttl", "seconds a CAS service ticket stays valid", seconds()),
    Knob("code_ttl", "seconds an OpenID Connect authorization code stays valid", seconds()),
    Knob(
        "throttle_failures",
        "wrong passwords for one account from one address within the window before each further attempt from "
        "it waits (429, a wait doubled at each one)",
        int_in(1, 1000),
    ),
    Knob(
        "account_throttle_failures",
        "wrong passwords for one account from all addresses within the window before each further attempt waits",
        int_in(1, 100_000),
    ),
    Knob("throttle_window", "seconds over which wrong passwords are counted", seconds()),
    Knob("throttle_max_delay", "the longest wait between two attempts of a slowed-down login, seconds", seconds(1.0)),
    # National units, scaled to the run (docs/platform.md, "Capacity in national units").
    Knob(
        "national_login_rate",
        "logins (credential submissions) per second the national service admits, or 'unlimited'; "
        "run level: x run scale x run speed",
        rate_or_unlimited("logins"),
    ),
    Knob(
        "national_request_rate",
        "requests per second the national service admits, or 'unlimited'; run level: x run scale x run speed",
        rate_or_unlimited("requests"),
    ),
    Knob(
        "national_sessions",
        "ENT sessions the national service holds at once, or 'unlimited'; run level: x run scale",
        count_or_unlimited(1, 10**9),
    ),
    Knob("login_timeout", "scenario seconds a login waits for admission under the rate limits", seconds(0.0)),
    Knob("request_timeout", "scenario seconds a request waits for admission under the rate limits", seconds(0.0)),
    # The run the platform stands in for.
    Knob("run_scale", "share of the national population the run replays, 0 < S <= 1 (default 1)", run_scale),
    Knob("run_speed", "how many times faster than the scenario's clock the run goes, > 0 (default 1)", run_speed),
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
        if values.get(knob.field) is UNLIMITED:
            values[knob.field] = None
    return profile, Settings(**values)
