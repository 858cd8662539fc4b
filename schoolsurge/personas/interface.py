"""What the personas need of the engine that runs them, and all they use of it: a narrow interface, as Protocols.

A Behaviour is given the run's context (the person's group, their credentials, the replay's speed and window),
their claim (who, and when they meant to arrive), their process's share of the test (where their outcome is
counted: the ledger, the client's record of its steps, the run's clock, the virtual-class gauge) and a step
recorder. The engine implements these
(engine/context.py `SurgeContext`, engine/share.py `ProcessShare` and the closed model's view of its share in
engine/kinds/closed.py, engine/queue.py `Claim`); the personas import nothing from the engine, and reach the
platform only through a PlatformClient (clients/base.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from schoolsurge.models.replay import Replay
from schoolsurge.rundir import ClientSteps, Counter
from schoolsurge.scenario import Group

# (type, name, milliseconds, error or None): how a behaviour reports a step that spans several requests.
StepRecorder = Callable[[str, str, float, Exception | None], None]


class Tally(Protocol):
    """Where a session's outcomes are counted, by run second (the engine's Ledger)."""

    def count(self, second: float, name: Counter, amount: int = 1, group: str | None = None) -> None:
        """Count `name` in run second `second`; with the person's `group`, in that group's counts too."""
        ...

    def time_to_login(self, second: float, milliseconds: float) -> None: ...


class RunClock(Protocol):
    def run_seconds(self) -> float:
        """Seconds since the test started."""
        ...


class SessionShare(Protocol):
    """A Locust process's share of the test, as a person's session sees it."""

    in_virtual_class: int  # people of this process in a virtual class now (a gauge the behaviours keep)

    @property
    def ledger(self) -> Tally: ...

    @property
    def queue(self) -> RunClock: ...

    @property
    def client_steps(self) -> ClientSteps:
        """Where the client's skipped steps, crashes and failed logins are recorded (client_steps.json)."""
        ...

    @property
    def start_unix(self) -> float | None:
        """Unix time of run second 0; None when there is no replayed window to end sessions (closed model)."""
        ...


class PersonArrival(Protocol):
    @property
    def at_s(self) -> float:
        """Run second of the intended arrival: the ledger row (cohort) the person's outcome is counted in."""
        ...

    @property
    def group(self) -> str: ...

    @property
    def person(self) -> int: ...


class PersonClaim(Protocol):
    """Who arrives, and the unix time they meant to (time to log in counts from it)."""

    @property
    def arrival(self) -> PersonArrival: ...

    @property
    def intended_unix(self) -> float: ...


class RunContext(Protocol):
    """What a behaviour knows about the run."""

    @property
    def replay(self) -> Replay: ...

    @property
    def seed(self) -> int: ...

    def group(self, name: str) -> Group: ...

    def credentials(self, group: Group, person: int) -> tuple[str, str]: ...
