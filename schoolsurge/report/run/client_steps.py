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
from schoolsurge.report.outcome.against_plan import Agreement
from schoolsurge.rundir.steps import VIRTUAL_CLASS_STEPS

# Figures of the plan agreement a skipped step keeps short of the plan (Agreement.figure starts with them).
VIRTUAL_CLASS_FIGURES = ("people in a virtual class", "virtual classes opened")
REQUEST_FIGURES = ("requests per second",)


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


def comparable_to_plan(agreements: list[Agreement], section: ClientStepsSection) -> tuple[list[Agreement], str]:
    """The plan agreement's figures the client's skipped steps do not keep short of the plan, and a line saying
    which were left out and why ("" when none was): a step not taken is not overload. A skipped virtual-class
    step leaves out the virtual-class figures; any skipped step, the requests per second."""
    skipped = {step for step, _ in section.not_supported}
    if not skipped:
        return agreements, ""
    left_out = list(REQUEST_FIGURES)
    if skipped & VIRTUAL_CLASS_STEPS:
        left_out += VIRTUAL_CLASS_FIGURES
    kept = [a for a in agreements if not a.figure.startswith(tuple(left_out))]
    steps = ", ".join(sorted(skipped))
    return kept, (
        f"Left out: {', '.join(left_out)}. The client does not perform {steps} (see Client steps), so these fall "
        "short of the plan whatever the platform's capacity."
    )
