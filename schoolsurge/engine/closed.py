"""The closed model's share: people taken on by Locust user classes (persona_users.py) rather than replayed from
the schedule, living the same personas through the same engine.

A Behaviour takes a `claim` (who, and when they meant to arrive) and a `share` (the process's ledger, clock and
session gauges). In the open model both come from the engine's arrival queue. Here:

- `ClosedShare` is the engine's share of one Locust process in a closed-model run (the kind ClosedRun makes it,
  kinds/closed.py): a Share with no part of the schedule (nothing is scheduled ahead), whose ledger still feeds
  `sessions.csv` through the engine (every process's, merged on the master as in any run).
- `ClosedShare.take_on(persona)` is a user's next person: a group of that persona, picked by the groups' shares
  of the scenario's logins, a person number, and a Claim whose intended time is now. The person counts as
  scheduled and started in that second, never late: in a closed model a person arrives when a user is free.
- Person numbers run per group across a process's users; a process that is the i-th of n Locust workers takes
  numbers i, i + n, i + 2n... (its worker index, from the engine's assignment), so workers do not share them.
  They wrap around the group's people at the run's `--scale` (the accounts the platform has for the group), so
  person k is the same account, and holds a virtual class or not, as in an open-model run. Past that, accounts
  are reused: more users of a group than its people log in to the same accounts at once.
- The behaviours see the share through `ClosedSessionView`, which has no replayed window: a session lasts the
  scenario's session length at `--speed`, however long the closed run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from schoolsurge.engine.queue import ArrivalQueue, Claim
from schoolsurge.engine.share import Share
from schoolsurge.models.population import logins_expected
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import Arrival
from schoolsurge.parameters import RunParameters
from schoolsurge.personas.interface import SessionShare
from schoolsurge.rundir import Counter
from schoolsurge.scenario import Group, Scenario


def persona_shares(scenario: Scenario) -> dict[str, float]:
    """Each persona's share of the scenario's logins (people who log in within the window, national)."""
    logins: dict[str, float] = {}
    for group in scenario.groups:
        logins[group.persona] = logins.get(group.persona, 0.0) + logins_expected(group)
    total = sum(logins.values())
    return {persona: (count / total if total else 0.0) for persona, count in logins.items()}


class ClosedSessionView:
    """What a closed-model person's Behaviour sees of the ClosedShare: the same ledger, record of the client's steps,
    clock and gauges, but no
    replayed window (`start_unix` None, so `Behaviour.window_end` is always ahead): every session lasts its
    length and ends with a logout, however long the run."""

    start_unix = None

    def __init__(self, share: ClosedShare) -> None:
        self._share = share
        self.ledger = share.ledger
        self.client_steps = share.client_steps
        self.queue: ArrivalQueue = share.queue

    @property
    def active_sessions(self) -> int:
        return self._share.active_sessions

    @active_sessions.setter
    def active_sessions(self, value: int) -> None:
        self._share.active_sessions = value

    @property
    def in_virtual_class(self) -> int:
        return self._share.in_virtual_class

    @in_virtual_class.setter
    def in_virtual_class(self, value: int) -> None:
        self._share.in_virtual_class = value


class ClosedShare(Share):
    """One Locust process's share of a closed-model test (a new one at every test start, as any share)."""

    schedule: Sequence[Arrival] = ()  # nothing scheduled ahead; every process agrees on 0

    def __init__(self, replay: Replay, parameters: RunParameters, clock: Callable[[], float] = time.time) -> None:
        super().__init__(replay, parameters, clock)
        self._sessions = ClosedSessionView(self)
        self._groups: dict[str, list[tuple[Group, float]]] = {}
        for group in replay.scenario.groups:
            self._groups.setdefault(group.persona, []).append((group, logins_expected(group)))
        self._taken: dict[str, int] = {}  # persons taken on so far by this process, per group

    @property
    def sessions(self) -> SessionShare:
        return self._sessions

    def assign(self, parts: int, index: int, start_unix: float) -> int:
        """Run second 0 at start_unix; this process is part `index` of `parts` (it numbers persons from
        `index`, `parts` apart). No arrival is loaded: users take people on as they become free."""
        self.parts, self.part_index, self.start_unix = parts, index, start_unix
        self.queue.load((), start_unix)
        return 0

    def take_on(self, persona: str) -> Claim:
        """The next person of this persona, arriving now (raises LookupError when no group has the persona)."""
        group = self._next_group(persona)
        taken = self._taken.get(group.name, 0)
        self._taken[group.name] = taken + 1
        person = (self.part_index + self.parts * taken) % max(1, self.replay.people_of(group))
        claim = Claim(Arrival(self.queue.run_seconds(), group.name, person), self.clock())
        self.ledger.count(claim.arrival.at_s, Counter.SCHEDULED)
        self.queue.started(claim)  # started in the same second, with no delay
        return claim

    def _next_group(self, persona: str) -> Group:
        """The persona's group furthest behind its share of the persona's logins (the largest first): after n
        persons, each group has had its share of them within one."""
        groups = self._groups.get(persona)
        if not groups:
            raise LookupError(f"scenario {self.replay.scenario.name!r} has no group of persona {persona!r}")
        total = sum(logins for _, logins in groups)
        taken = sum(self._taken.get(group.name, 0) for group, _ in groups)
        due = [(logins / total * (taken + 1) - self._taken.get(group.name, 0), group) for group, logins in groups]
        return max(due, key=lambda item: item[0])[1]
