"""One Locust process's share of the surge: its arrivals, its ledger and what its agents are doing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.queue import ArrivalQueue
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import Arrival, build_schedule, split_schedule


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


class Engine:
    def __init__(
        self,
        replay: Replay,
        seed: int,
        late_after_s: float = 1.0,
        drop_after_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.replay = replay
        self.seed = seed
        self.clock = clock
        self.ledger = Ledger()
        self.queue = ArrivalQueue(self.ledger, late_after_s, drop_after_s, clock)
        self.active_sessions = 0
        self.in_virtual_class = 0
        self._schedule: list[Arrival] | None = None
        self.parts, self.part_index = 1, 0

    @property
    def schedule(self) -> list[Arrival]:
        """The whole run's arrivals (every process computes the same list from the seed)."""
        if self._schedule is None:
            replay = self.replay
            self._schedule = build_schedule(replay.scenario, replay.scale, replay.speed, self.seed)
        return self._schedule

    def assign(self, parts: int, index: int, start_unix: float) -> int:
        """Take part `index` of `parts` of the schedule, with run second 0 at start_unix; returns its size."""
        self.parts, self.part_index = parts, index
        part = split_schedule(self.schedule, parts, index)
        self.queue.load(part, start_unix)
        return len(part)

    def status(self) -> FleetStatus:
        return FleetStatus(
            waiting=self.queue.waiting(),
            active=self.active_sessions,
            remaining=self.queue.remaining,
            loaded=self.queue.loaded,
        )

    def sample_gauges(self, pool_size: int) -> None:
        """Once a second: the gauges of sessions.csv for this process."""
        if not self.queue.loaded:
            return
        second = self.queue.run_seconds()
        self.ledger.sample(second, "active_sessions", self.active_sessions)
        self.ledger.sample(second, "in_virtual_class", self.in_virtual_class)
        self.ledger.sample(second, "waiting_for_agent", self.queue.waiting())
        self.ledger.sample(second, "pool_size", pool_size)
