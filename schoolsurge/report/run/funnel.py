"""The login funnel: arrived, login form, credentials accepted, ticket validated, first page, virtual class joined;
how many were lost at each stage, and why.

People are counted where the engine counts them (sessions.csv: arrived, started, logged in, virtual class joins;
Locust's person-level `FLOW` entries: who gave up on which page). The single sign-on's own stages exist only as
requests (Locust's statistics of `sso: login form`, `sso: submit credentials`, `sso: ticket callback` or
`sso: validate ticket`; with OpenID Connect, `sso: code callback` or `sso: redeem code`), so they are counted
in login attempts: every attempt asks for the form, sends the credentials if it got one and has its ticket
validated if they were accepted. A person who retries makes several attempts, so those stages are shares of
the attempts, not of the people. "Why" is the stage's most frequent failures in Locust's failures table, and
the client's crashes and failed logins by class, each with one example account (client_steps.json): a crash while
logging in kept that person out, one on the dashboard ended their journey there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import DASHBOARD_STEP, LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE, LOGIN_STEP, Counter
from schoolsurge.rundir.steps import (
    FIRST_PAGES,
    GAVE_UP_PREFIX,
    LOGIN_FORM,
    SUBMIT_CREDENTIALS,
    TICKET_STEPS,
    VIRTUAL_CLASS_JOIN,
)

GAVE_UP_FIRST_PAGE = f"{GAVE_UP_PREFIX}dashboard"  # FLOW entry of people who left while their landing page failed
PEOPLE, ATTEMPTS = "people", "attempts"  # attempts: login attempts
TOP_REASONS = 3


@dataclass(frozen=True)
class Stage:
    name: str
    count: int
    unit: str  # PEOPLE or ATTEMPTS
    of: int | None = None  # the count this stage is a share of (the stage before it, in the same unit)
    why: list[tuple[str, int]] = field(default_factory=list)  # (reason, occurrences), most frequent first
    note: str = ""

    @property
    def lost(self) -> int | None:
        return None if self.of is None else max(self.of - self.count, 0)

    @property
    def share_lost(self) -> float | None:
        return None if self.of is None or not self.of else self.lost / self.of

    @property
    def share_kept(self) -> float | None:
        return None if self.of is None or not self.of else self.count / self.of


def _stats_row(data: RunData, names: tuple[str, ...], kind: str | None = None) -> tuple[int, int] | None:
    """(requests, failures) of the first of `names` in Locust's statistics; None when none is there."""
    stats = data.stats
    for name in names:
        rows = stats[stats["Name"].astype(str) == name]
        if kind is not None:
            rows = rows[rows["Type"] == kind]
        elif len(rows):
            rows = rows[rows["Type"] != LOGIN_FLOW_TYPE]
        if len(rows):
            requests = int(pd.to_numeric(rows["Request Count"], errors="coerce").fillna(0).sum())
            failures = int(pd.to_numeric(rows["Failure Count"], errors="coerce").fillna(0).sum())
            return requests, failures
    return None


def _reasons(data: RunData, names: tuple[str, ...]) -> list[tuple[str, int]]:
    failures = data.failures
    if failures.empty or not {"Name", "Error", "Occurrences"} <= set(failures.columns):
        return []
    rows = failures[failures["Name"].astype(str).isin(names)]
    grouped = pd.to_numeric(rows["Occurrences"], errors="coerce").fillna(0).groupby(rows["Error"].astype(str)).sum()
    return [(str(error), int(n)) for error, n in grouped.sort_values(ascending=False).head(TOP_REASONS).items()]


def _crashes(data: RunData, step: str) -> list[tuple[str, int]]:
    """(error, times) of the client's crashes in one of its steps (client_steps.json), most frequent first."""
    return [(error, crash.count) for name, error, crash in data.client_steps.crashes_by_count() if name == step]


def _login_failures(data: RunData) -> list[tuple[str, int]]:
    """(failed login attempts of a class, with its first account: username only, never a password, attempts),
    most frequent first (client_steps.json)."""
    failures = sorted(data.client_steps.login_failures.items(), key=lambda item: -item[1].count)
    return [
        (f"failed login attempts: {failure} (e.g. {attempts.username})", attempts.count)
        for failure, attempts in failures
    ]


def login_funnel(data: RunData) -> list[Stage]:
    """The funnel's stages in order; [] when the run has neither the engine's sessions nor a login form."""
    sessions = data.sessions
    totals = sessions.sum(numeric_only=True) if sessions is not None else None
    stages: list[Stage] = []
    flow = _stats_row(data, (LOGIN_FLOW_NAME,), LOGIN_FLOW_TYPE)
    if totals is not None:
        arrived, started = int(totals[Counter.SCHEDULED]), int(totals[Counter.STARTED])
        stages.append(Stage("arrived (due to log in)", arrived, PEOPLE))
        late = int(totals[Counter.LATE])
        stages.append(
            Stage(
                "started (an agent took them)",
                started,
                PEOPLE,
                arrived,
                [("dropped by the load generator: no free agent in time", int(totals[Counter.DROPPED]))]
                if totals[Counter.DROPPED]
                else [],
                f"{late:,} started late" if late else "",
            )
        )
        attempts = int(totals[Counter.LOGIN_ATTEMPTS])
    elif flow is not None:
        started = flow[0]
        stages.append(Stage("tried to log in (Locust's login entry)", started, PEOPLE))
        attempts = 0
    else:
        return []
    form = _stats_row(data, (LOGIN_FORM,))
    previous = None
    if form is not None:
        attempts = max(attempts, form[0])
        per_person = f"{attempts / started:.1f} per person who started" if started else ""
        stages.append(Stage("login attempts", attempts, ATTEMPTS, note=per_person))
        previous = attempts
        for name, names in (
            ("login form served", (LOGIN_FORM,)),
            ("credentials accepted", (SUBMIT_CREDENTIALS,)),
            ("ticket validated", TICKET_STEPS),
        ):
            row = _stats_row(data, names)
            if row is None:
                continue
            passed = min(row[0] - row[1], previous)  # in-flight requests at the end cannot pass more than came
            stages.append(Stage(name, passed, ATTEMPTS, previous, _reasons(data, names)))
            previous = passed
    if totals is not None:
        logged_in = int(totals[Counter.LOGINS_SUCCEEDED])
        gave_up = int(totals[Counter.ABANDONED])
        still = max(started - logged_in - gave_up, 0)
        why = [("gave up logging in (patience or retries exhausted)", gave_up)] if gave_up else []
        if still:
            why.append(("still trying when the run ended", still))
        why += [(f"last attempt: {reason}", n) for reason, n in _reasons(data, (LOGIN_FLOW_NAME,))[:1]]
        why += [(f"the client crashed: {error}", n) for error, n in _crashes(data, LOGIN_STEP)]
        why += _login_failures(data)
    elif flow is not None:
        logged_in, why = flow[0] - flow[1], _reasons(data, (LOGIN_FLOW_NAME,))
    stages.append(Stage("logged in", logged_in, PEOPLE, started, why))
    page = _stats_row(data, FIRST_PAGES)
    if page is not None:
        left = _stats_row(data, (GAVE_UP_FIRST_PAGE,), LOGIN_FLOW_TYPE)
        crashed = _crashes(data, DASHBOARD_STEP)
        first_page = max(logged_in - (left[0] if left else 0) - sum(n for _, n in crashed), 0)
        why = [(f"the client crashed reading it: {error}", n) for error, n in crashed]
        why += [(f"left while it failed: {r}", n) for r, n in _reasons(data, (GAVE_UP_FIRST_PAGE,))]
        why += [(f"a request failed (asked again): {r}", n) for r, n in _reasons(data, FIRST_PAGES)]
        stages.append(
            Stage(
                "first page (dashboard)",
                first_page,
                PEOPLE,
                logged_in,
                why[:TOP_REASONS],
                "people who logged in, less those who left while a dashboard kept failing or whose client crashed "
                "reading one",
            )
        )
    if totals is not None and (totals[Counter.VIRTUAL_CLASS_JOINS] or _stats_row(data, (VIRTUAL_CLASS_JOIN,))):
        opened = int(totals[Counter.VIRTUAL_CLASSES_OPENED])
        stages.append(
            Stage(
                "virtual class joined",
                int(totals[Counter.VIRTUAL_CLASS_JOINS]),
                PEOPLE,
                None,
                _reasons(data, (VIRTUAL_CLASS_JOIN,)),
                f"pupils let into a class (only the scenario's share come for one; not a loss); {opened:,} teachers "
                "opened one",
            )
        )
    return stages
