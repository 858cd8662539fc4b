"""One Locust process's share of a test: its part of the schedule, its ledger, its record of the client's steps,
what its agents are doing.

A new share is made at every test start (the web UI can start a test again) by the run's kind (kinds/): a
`ProcessShare` holds a part of the schedule (open arrivals: a morning, a sweep), the closed model's holds none
(closed.py). The installed Engine keeps the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.queue import ArrivalQueue, Claim
from schoolsurge.engine.stepper import StepScheduler
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import Arrival, ArrivalArrays
from schoolsurge.parameters import RunParameters
from schoolsurge.personas.interface import SessionShare
from schoolsurge.rundir import ClientSteps, Gauge


@dataclass
class FleetStatus:
    """What the load shape needs to size the pool, summed over the processes that run agents."""

    waiting: int = 0  # arrivals due, and people whose pause is over, waiting for a free agent
    active: int = 0
    remaining: int = 0
    loaded: bool = False

    def add(self, other: FleetStatus) -> None:
        self.waiting += other.waiting
        self.active += other.active
        self.remaining += other.remaining
        self.loaded = self.loaded or other.loaded


class RunSchedule(Sequence[Arrival]):
    """The whole run's arrivals, computed only as far as they are asked for: its length comes from the replay,
    a round-robin part (`schedule[index::parts]`, as split_schedule takes it) is computed on its own, and
    anything else from the whole run's arrays, computed once. A worker that needs the run's size or another
    part than its own never holds the whole run."""

    def __init__(self, replay: Replay, seed: int) -> None:
        self.replay, self.seed = replay, seed
        self._whole: ArrivalArrays | None = None

    def __len__(self) -> int:
        return self.replay.people  # the schedule's length, from the scale (or a sweep's rates) alone

    def part(self, parts: int, index: int) -> ArrivalArrays:
        """Part `index` of `parts` of the replay's arrivals, round-robin by position in the whole run."""
        return self.replay.schedule_part(self.seed, parts, index)

    @property
    def arrays(self) -> ArrivalArrays:
        if self._whole is None:
            self._whole = self.part(1, 0)
        return self._whole

    @overload
    def __getitem__(self, index: int) -> Arrival: ...

    @overload
    def __getitem__(self, index: slice) -> ArrivalArrays: ...

    def __getitem__(self, index: int | slice) -> Arrival | ArrivalArrays:
        if isinstance(index, slice) and self._whole is None and index.stop is None:
            start, step = index.start or 0, index.step or 1
            if step >= 1 and 0 <= start < step:
                return self.part(step, start)
        return self.arrays[index]

    def __iter__(self) -> Iterator[Arrival]:
        return iter(self.arrays)


class Share:
    """What every process's share of a test has: its ledger, its record of the client's steps (client_steps.json),
    its clock (the queue), its people in a session and in a virtual class. Its kind says what it holds of the
    schedule (`schedule`, `assign`)."""

    schedule: Sequence[Arrival]  # the whole run's arrivals

    def __init__(self, replay: Replay, parameters: RunParameters, clock: Callable[[], float] = time.time) -> None:
        self.replay = replay
        self.parameters = parameters
        self.clock = clock
        self.ledger = Ledger()
        self.client_steps = ClientSteps()
        self.queue = ArrivalQueue(self.ledger, parameters.late_after_s, parameters.drop_after_s, clock)
        self.stepper = StepScheduler(self.queue, self._session_ended)  # its people between two steps
        self.active_sessions = 0
        self.in_virtual_class = 0
        self.parts, self.part_index = 1, 0
        self.start_unix: float | None = None

    def assign(self, parts: int, index: int, start_unix: float) -> int:
        """Take part `index` of `parts` of the test, with run second 0 at start_unix; returns its arrivals."""
        raise NotImplementedError

    def replace_from(self, from_s: float, arrivals: ArrivalArrays) -> int:
        """From run second from_s on, this process's part of these arrivals instead of the planned ones (a sweep's
        refinement step); returns its size. Only a share of the schedule has arrivals to replace."""
        raise NotImplementedError

    @property
    def sessions(self) -> SessionShare:
        """What a person's behaviour sees of this share (personas/interface.py): the share itself."""
        return self

    def take_on(self, persona: str) -> Claim:
        """The next person of this persona for a user that is free (the closed model's persona users): here people
        arrive by the schedule, not when a user is free."""
        raise LookupError(f"this run replays its schedule: no {persona} is taken on by a free user")

    def keep_clock(self, start_unix: float) -> None:
        """The master runs no agents but keeps the run's clock."""
        self.start_unix = start_unix
        self.queue.load((), start_unix)

    def _session_ended(self) -> None:
        self.active_sessions -= 1

    def status(self) -> FleetStatus:
        return FleetStatus(
            waiting=self.stepper.waiting,
            active=self.active_sessions,
            remaining=self.queue.remaining,
            loaded=self.queue.loaded,
        )

    def sample_gauges(self, pool_size: int, cpu_percent: int = 0) -> None:
        """Once a second: the gauges of sessions.csv for this process."""
        if not self.queue.loaded:
            return
        second = self.queue.run_seconds()
        self.ledger.sample(second, Gauge.ACTIVE_SESSIONS, self.active_sessions)
        self.ledger.sample(second, Gauge.IN_VIRTUAL_CLASS, self.in_virtual_class)
        self.ledger.sample(second, Gauge.WAITING_FOR_AGENT, self.stepper.arrivals_waiting)
        self.ledger.sample(second, Gauge.POOL_SIZE, pool_size)
        self.ledger.sample(second, Gauge.GENERATOR_CPU_PERCENT, cpu_percent)


class ProcessShare(Share):
    """A share of open arrivals: its part of the schedule, claimed by the agents at the arrivals' times."""

    def __init__(self, replay: Replay, parameters: RunParameters, clock: Callable[[], float] = time.time) -> None:
        super().__init__(replay, parameters, clock)
        self.schedule = RunSchedule(replay, parameters.seed)  # the whole run's, computed as far as asked

    def assign(self, parts: int, index: int, start_unix: float) -> int:
        """Take part `index` of `parts` of the schedule, with run second 0 at start_unix; returns its size.
        Only this part is computed (every process derives its own from the seed)."""
        self.parts, self.part_index, self.start_unix = parts, index, start_unix
        part = self.schedule.part(parts, index)
        self.queue.load(part, start_unix)
        return len(part)

    def replace_from(self, from_s: float, arrivals: ArrivalArrays) -> int:
        """From run second from_s on, this process's part of these arrivals (the whole run's, round-robin as its
        part of the schedule) instead of the planned ones; returns its size."""
        part = arrivals.round_robin(self.parts, self.part_index)
        self.queue.replace_from(from_s, part)
        return len(part)
