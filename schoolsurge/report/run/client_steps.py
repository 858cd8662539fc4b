"""The report's "Client steps" section, from client_steps.json: what the platform client could not do, or did
wrong, step by step.

- Crashes: steps that raised in the client (a bug of the client, not an answer of the platform), each with its
  error, how many times, where in the code and its first account. Each ended that person's journey.
- Steps not performed: journey steps the client does not offer (StepNotSupported), each with the times people
  would have taken it; figures that depend on them are left out of the plan agreement.
- Failed logins by class (clients/login_failures.py), each with one example account: its username, never its
  password.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from schoolsurge.report.load.run_data import RunData


@dataclass(frozen=True)
class CrashRow:
    step: str
    error: str
    count: int
    where: str
    username: str


@dataclass(frozen=True)
class LoginFailureRow:
    failure: str  # its class: "credentials refused", "fields not found"...
    attempts: int
    username: str  # the first account that failed so: never its password


@dataclass(frozen=True)
class ClientStepsSection:
    client: str
    crashes: list[CrashRow] = field(default_factory=list)
    not_supported: list[tuple[str, int]] = field(default_factory=list)  # (step, times people would have taken it)
    login_failures: list[LoginFailureRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.crashes or self.not_supported or self.login_failures)


def client_steps_section(data: RunData) -> ClientStepsSection:
    """The section's tables; empty (falsy) when the client did everything asked of it."""
    record = data.client_steps
    crashes = [
        CrashRow(step, error, crash.count, crash.where, crash.username)
        for step, error, crash in record.crashes_by_count()
    ]
    skipped = sorted(record.not_supported.items(), key=lambda item: (-item[1], item[0]))
    failures = sorted(record.login_failures.items(), key=lambda item: (-item[1].count, item[0]))
    return ClientStepsSection(
        data.manifest.client or "the default client",
        crashes,
        skipped,
        [LoginFailureRow(failure, attempts.count, attempts.username) for failure, attempts in failures],
    )
