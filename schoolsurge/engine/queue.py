"""A process's part of the arrival schedule, handed out in intended-time order.

The engine's clock (stepper.py) claims each arrival as its intended time comes (`claim_due`) and hands it to the
next free agent, so an arrival starts on time whenever a free agent exists; when none is free it starts late
(counted with its delay) and, past the lateness limit, is dropped (counted). Every scheduled arrival ends up
started or dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from gevent.event import Event

from schoolsurge.engine.ledger import Ledger
from schoolsurge.models.schedule import ArrivalArrays
from schoolsurge.parameters import DROP_AFTER_S, LATE_AFTER_S
from schoolsurge.rundir import Counter


class ScheduledArrival(Protocol):
    at_s: float
    group: str
    person: int


@dataclass(frozen=True, slots=True)
class Claim:
    arrival: ScheduledArrival
    intended_unix: float


class ArrivalQueue:
    def __init__(
        self,
        ledger: Ledger,
        late_after_s: float = LATE_AFTER_S,
        drop_after_s: float = DROP_AFTER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.late_after_s = late_after_s
        self.drop_after_s = drop_after_s
        self.clock = clock
        self._arrivals: Sequence[ScheduledArrival] = ()
        self._times: np.ndarray = np.empty(0)
        self._next = 0
        self.start_unix: float | None = None
        self._loaded = Event()

    def load(self, arrivals: Sequence[ScheduledArrival] | ArrivalArrays, start_unix: float) -> None:
        """Take this process's part of the schedule (sorted by at_s); run second 0 is start_unix. ArrivalArrays
        are used as they are (no object per arrival until it is claimed)."""
        if isinstance(arrivals, ArrivalArrays):
            times = arrivals.at_s
        else:
            times = np.fromiter((a.at_s for a in arrivals), dtype=np.float64, count=len(arrivals))
        self._arrivals = arrivals
        self._times = times
        self._next = 0
        self.start_unix = start_unix
        if len(times):  # scheduled arrivals per run second, counted in one pass
            per_second = np.bincount(np.maximum(times, 0.0).astype(np.int64))
            for second in np.flatnonzero(per_second).tolist():
                self.ledger.count(second, Counter.SCHEDULED, int(per_second[second]))
        self._loaded.set()

    def replace_from(self, from_s: float, arrivals: ArrivalArrays) -> None:
        """From run second from_s on, these arrivals (sorted, all at or after from_s) instead of the ones planned:
        a sweep's refinement step, whose level is chosen during the run. The planned arrivals not yet claimed
        from from_s on are no longer scheduled (their counts undone); one an agent already claimed still starts."""
        assert isinstance(self._arrivals, ArrivalArrays), "replace_from() on a schedule of ArrivalArrays only"
        keep = max(self._next, int(np.searchsorted(self._times, from_s, side="left")))
        dropped = self._times[keep:]
        if len(dropped):
            per_second = np.bincount(np.maximum(dropped, 0.0).astype(np.int64))
            for second in np.flatnonzero(per_second).tolist():
                self.ledger.count(second, Counter.SCHEDULED, -int(per_second[second]))
        kept = self._arrivals[:keep]
        self._arrivals = ArrivalArrays(
            np.concatenate([kept.at_s, arrivals.at_s]),
            np.concatenate([kept.group, arrivals.group.astype(kept.group.dtype)]),
            np.concatenate([kept.person, arrivals.person]),
            kept.groups,
        )
        self._times = self._arrivals.at_s
        if len(arrivals):
            per_second = np.bincount(np.maximum(arrivals.at_s, 0.0).astype(np.int64))
            for second in np.flatnonzero(per_second).tolist():
                self.ledger.count(second, Counter.SCHEDULED, int(per_second[second]))

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def run_seconds(self) -> float:
        now = self.clock()
        return now - (now if self.start_unix is None else self.start_unix)

    @property
    def remaining(self) -> int:
        return len(self._arrivals) - self._next

    def waiting(self) -> int:
        """Arrivals whose intended time has come but that no agent has claimed yet."""
        if not self.loaded:
            return 0
        due = int(np.searchsorted(self._times, self.run_seconds(), side="right"))
        return max(0, due - self._next)

    def claim(self) -> Claim | None:
        """The next arrival for a free agent, skipping (and counting) those too late to start; None when the
        schedule is exhausted."""
        assert self.start_unix is not None, "claim() before load()"
        while self._next < len(self._arrivals):
            arrival = self._arrivals[self._next]
            self._next += 1
            intended = self.start_unix + arrival.at_s
            delay = self.clock() - intended
            if delay > self.drop_after_s:
                self.ledger.count(arrival.at_s, Counter.DROPPED)
                continue
            return Claim(arrival, intended)
        return None

    def next_unix(self) -> float:
        """Unix time of the next arrival not yet claimed; infinity when there is none."""
        if self.start_unix is None or self._next >= len(self._times):
            return math.inf
        return self.start_unix + float(self._times[self._next])

    def claim_due(self) -> Claim | None:
        """The next arrival if its intended time has come, skipping (and counting) those too late to start;
        None when none is due yet (or the schedule is exhausted)."""
        if self.start_unix is None:
            return None
        now, times = self.clock(), self._times
        while self._next < len(times) and self.start_unix + times[self._next] <= now:
            arrival = self._arrivals[self._next]
            self._next += 1
            intended = self.start_unix + arrival.at_s
            if now - intended > self.drop_after_s:
                self.ledger.count(arrival.at_s, Counter.DROPPED)
                continue
            return Claim(arrival, intended)
        return None

    def dropped_if_late(self, claim: Claim) -> bool:
        """Whether a claimed arrival that waited for a free agent is now too late to start (then counted)."""
        if self.clock() - claim.intended_unix > self.drop_after_s:
            self.ledger.count(claim.arrival.at_s, Counter.DROPPED)
            return True
        return False

    def started(self, claim: Claim) -> float:
        """Record that the claimed arrival starts now; returns its start delay in seconds (0 when on time)."""
        delay = max(0.0, self.clock() - claim.intended_unix)
        second = claim.arrival.at_s
        self.ledger.count(second, Counter.STARTED, group=claim.arrival.group)
        self.ledger.start_delay(second, delay * 1000)
        if delay > self.late_after_s:
            self.ledger.count(second, Counter.LATE)
        return delay
