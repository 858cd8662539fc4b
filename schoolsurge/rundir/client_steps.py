"""client_steps.json: what the platform client did not do, or did wrong, step by step. The personas record it in
each Locust process, the master merges the workers' (engine/roles.py), the engine writes it beside sessions.csv
(engine/results.py); the report reads it.

    {
      "not_supported": {"schedule_virtual_class": 9, "messages": 31},
      "crashes": [
        {"step": "dashboard", "error": "KeyError 'role'", "count": 13,
         "where": "reference.py:43 in dashboard", "username": "eleve.0001", "at_s": 0.8}
      ],
      "login_failures": {
        "credentials refused": {"count": 2, "where": "", "username": "eleve.0003", "at_s": 1.2}
      }
    }

- `not_supported`: step, as PlatformClient names it (its method) -> the times people would have taken it and
  skipped it instead (their sum is sessions.csv's `steps_not_supported`).
- `crashes`: per step and error (the exception's type and message), the times that step raised in the client
  (sessions.csv's `client_errors` is their sum), where (the innermost frame of the first), and the first one's
  account and run second.
- `login_failures`: per class of failed login attempt (clients/login_failures.py: "credentials refused",
  "fields not found"...; UNCLASSIFIED for a message that names none), the attempts, and the first one's account
  and run second.

An account is named by its username, never its password. Every count adds up over processes; the first example
is the earliest (by run second) of any process.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.files import read_regular_text
from schoolsurge.rundir.layout import CLIENT_STEPS, write_json

UNCLASSIFIED = "unclassified"  # a failed login whose message names no class (a client of your own)
# Steps as this file names them: PlatformClient's methods (clients/base.py), those the personas and the report name.
LOGIN_STEP, DASHBOARD_STEP, LOGOUT_STEP = "login", "dashboard", "logout"


@dataclass
class Occurrences:
    """How many times something happened, and the first time it did: whose session, when, where in the code."""

    count: int = 0
    username: str = ""
    at_s: float = math.inf  # run second of the first; inf until one is recorded
    where: str = ""  # a crash's innermost frame: "file.py:LINE in function"

    def record(self, username: str, at_s: float, where: str = "", count: int = 1) -> None:
        self.count += count
        if at_s < self.at_s:
            self.username, self.at_s, self.where = username, at_s, where

    def add(self, other: Occurrences) -> None:
        self.record(other.username, other.at_s, other.where, other.count)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "username": self.username,
            "at_s": None if math.isinf(self.at_s) else round(self.at_s, 3),
            "where": self.where,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Occurrences:
        at_s = data.get("at_s")
        return cls(
            int(data["count"]),
            str(data.get("username") or ""),
            math.inf if at_s is None else float(at_s),
            str(data.get("where") or ""),
        )


@dataclass
class ClientSteps:
    """One run's (or one process's) record of the client's skipped steps, crashes and failed logins."""

    not_supported: dict[str, int] = field(default_factory=dict)
    crashes: dict[tuple[str, str], Occurrences] = field(default_factory=dict)  # (step, error) -> occurrences
    login_failures: dict[str, Occurrences] = field(default_factory=dict)  # class -> failed attempts

    # ---- recording (the personas) ---------------------------------------------------------------------

    def skipped(self, step: str) -> None:
        self.not_supported[step] = self.not_supported.get(step, 0) + 1

    def crashed(self, step: str, error: str, where: str, username: str, at_s: float) -> None:
        self.crashes.setdefault((step, error), Occurrences()).record(username, at_s, where)

    def login_failed(self, failure: str, username: str, at_s: float) -> None:
        self.login_failures.setdefault(failure, Occurrences()).record(username, at_s)

    # ---- adding up (the master) -----------------------------------------------------------------------

    def merge(self, other: ClientSteps) -> None:
        for step, count in other.not_supported.items():
            self.not_supported[step] = self.not_supported.get(step, 0) + count
        for key, crash in other.crashes.items():
            self.crashes.setdefault(key, Occurrences()).add(crash)
        for failure, attempts in other.login_failures.items():
            self.login_failures.setdefault(failure, Occurrences()).add(attempts)

    def take(self) -> ClientSteps:
        """Hand over everything recorded so far and start empty (what a worker sends to the master)."""
        taken = ClientSteps(self.not_supported, self.crashes, self.login_failures)
        self.not_supported, self.crashes, self.login_failures = {}, {}, {}
        return taken

    # ---- reading what was recorded (the report) ---------------------------------------------------------

    @property
    def crash_count(self) -> int:
        return sum(crash.count for crash in self.crashes.values())

    def crashes_by_count(self) -> list[tuple[str, str, Occurrences]]:
        """(step, error, occurrences), the most frequent first (the earliest first among equals)."""
        ordered = sorted(self.crashes.items(), key=lambda item: (-item[1].count, item[1].at_s))
        return [(step, error, crash) for (step, error), crash in ordered]

    # ---- the file ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "not_supported": dict(sorted(self.not_supported.items())),
            "crashes": [
                {"step": step, "error": error, **crash.to_json()} for step, error, crash in self.crashes_by_count()
            ],
            "login_failures": {
                failure: attempts.to_json() for failure, attempts in sorted(self.login_failures.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> ClientSteps:
        """The record a JSON object holds; ValueError (or a KeyError, TypeError) when it is not one of these."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        crashes = {(str(c["step"]), str(c["error"])): Occurrences.from_json(c) for c in data.get("crashes", [])}
        return cls(
            {str(step): int(count) for step, count in data.get("not_supported", {}).items()},
            crashes,
            {str(name): Occurrences.from_json(o) for name, o in data.get("login_failures", {}).items()},
        )


def write_client_steps(run_dir: Path, steps: ClientSteps) -> None:
    write_json(run_dir / CLIENT_STEPS, steps.to_json())


def read_client_steps(run_dir: Path) -> ClientSteps:
    """The run's record; OSError when it cannot be read, ValueError when it is not one (the message says why)."""
    try:
        return ClientSteps.from_json(json.loads(read_regular_text(run_dir / CLIENT_STEPS)))
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a client steps record ({type(error).__name__}: {error})") from None
