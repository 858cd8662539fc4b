"""One Locust process's share of a test: its part of the schedule, its ledger, what its agents are doing.

A new share is made at every test start (the web UI can start a test again); the installed Engine keeps the
current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.queue import ArrivalQueue
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import Arrival, split_schedule
from schoolsurge.parameters import RunParameters
from schoolsurge.rundir import Gauge


@dataclass
class FleetStatus:
    """What the load shape needs to size the pool, summed over the processes that run agents."""

    waiting: int = 0
    active: int = 0
    remaining: int = 0
    loaded: bool = False

    def add(self, other: FleetStatus) -> None:
        self.waiting += other.waiting
        self.active += other.active
        self.remaining += other.remaining
        self.loaded = self.loaded or other.loaded


class ProcessShare:
    def __init__(self, replay: Replay, parameters: RunParameters, clock: Callable[[], float] = time.time) -> None:
        self.replay = replay
        self.parameters = parameters
        self.clock = clock
        self.ledger = Ledger()
        self.queue = ArrivalQueue(self.ledger, parameters.late_after_s, parameters.drop_after_s, clock)
        self.active_sessions = 0
        self.in_virtual_class = 0
        self._schedule: list[Arrival] | None = None
        self.parts, self.part_index = 1, 0
        self.start_unix: float | None = None

    @property
    def schedule(self) -> list[Arrival]:
        """The whole run's arrivals (every process computes the same list from the seed)."""
        if self._schedule is None:
            self._schedule = self.replay.schedule(self.parameters.seed)
        return self._schedule

    def assign(self, parts: int, index: int, start_unix: float) -> int:
        """Take part `index` of `parts` of the schedule, with run second 0 at start_unix; returns its size."""
        self.parts, self.part_index, self.start_unix = parts, index, start_unix
        part = split_schedule(self.schedule, parts, index)
        self.queue.load(part, start_unix)
        return len(part)

    def keep_clock(self, start_unix: float) -> None:
        """The master runs no agents but keeps the run's clock."""
        self.start_unix = start_unix
        self.queue.load((), start_unix)

    def status(self) -> FleetStatus:
        return FleetStatus(
            waiting=self.queue.waiting(),
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
        self.ledger.sample(second, Gauge.WAITING_FOR_AGENT, self.queue.waiting())
        self.ledger.sample(second, Gauge.POOL_SIZE, pool_size)
        self.ledger.sample(second, Gauge.GENERATOR_CPU_PERCENT, cpu_percent)
