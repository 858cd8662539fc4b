"""People between two steps: a timer heap of paused sessions, and the work due for a free agent.

A person in a session spends most of it paused: reading a page, waiting to ask again, between two heartbeats.
A paused person holds no greenlet here: their session is a generator (personas/base.py) parked on this process's
timer heap until the pause is over. One clock greenlet moves what falls due onto a queue of work for the agents
(a bounded pool of Locust users, shape.py): people whose pause is over, and scheduled arrivals whose intended
time has come, claimed from the ArrivalQueue then. A free agent takes the oldest item and runs that person's
session up to their next pause (agent.py). An arrival that waits on the queue for a free agent starts late
(counted with its delay) or, past the lateness limit, is dropped (counted), as when agents claimed it themselves.

Each person in a session has their own HTTP session (cookies, a kept-alive connection, as a browser has);
a session whose person is done is kept, its cookies cleared, for the next person to come.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
from collections.abc import Callable, Iterator

import gevent
from gevent import GreenletExit
from gevent.event import Event
from gevent.queue import Empty, Queue
from locust.contrib.fasthttp import FastHttpSession

from schoolsurge.engine.queue import ArrivalQueue, Claim

CLOCK_TICK_S = 1.0  # the clock looks again at least this often (a schedule changed by a sweep's refinement)


class PersonInSession:
    """A person in a session: their steps (the behaviour's generator) and their HTTP session."""

    __slots__ = ("http", "steps")

    def __init__(self, steps: Iterator[float], http: FastHttpSession) -> None:
        self.steps = steps
        self.http = http


class StepScheduler:
    """One process's people between two steps (the timer heap) and the work due for its agents."""

    def __init__(self, queue: ArrivalQueue, ended: Callable[[], None]) -> None:
        self.queue = queue
        self.clock = queue.clock
        self._ended = ended  # a person's session is over: the share counts one fewer in a session
        self._heap: list[tuple[float, int, PersonInSession]] = []
        self._order = itertools.count()  # ties on the heap are taken in the order they were parked
        self._due: Queue[PersonInSession | Claim] = Queue()
        self._arrivals_due = 0  # arrivals on the queue, due and not yet taken by an agent
        self._next_look = math.inf  # when the clock looks next (a person parked earlier wakes it)
        self._rearm = Event()
        self._clock: gevent.Greenlet | None = None
        self._idle_http: list[FastHttpSession] = []

    @property
    def arrivals_waiting(self) -> int:
        """Arrivals due and waiting for a free agent."""
        return self._arrivals_due + self.queue.waiting()

    @property
    def waiting(self) -> int:
        """Everything due and waiting for a free agent: arrivals, and people whose pause is over."""
        return self._due.qsize() + self.queue.waiting()

    @property
    def paused(self) -> int:
        """People of this process in a pause (on the heap)."""
        return len(self._heap)

    def start(self) -> None:
        """Start the clock (once the schedule is loaded); again, a no-op."""
        if self._clock is None:
            self._clock = gevent.spawn(self._keep_time)

    def next_due(self, timeout: float) -> PersonInSession | Claim | None:
        """The oldest work due (a person to resume, an arrival to start), waiting up to `timeout` for one; an
        arrival too late to start is dropped (counted) and the next item taken."""
        while True:
            try:
                item = self._due.get(timeout=timeout)
            except Empty:
                return None
            if isinstance(item, Claim):
                self._arrivals_due -= 1
                if self.queue.dropped_if_late(item):
                    continue
            return item

    def park(self, person: PersonInSession, pause_s: float) -> None:
        """The person pauses for pause_s seconds; resumed by an agent once it is over."""
        wake = self.clock() + pause_s
        heapq.heappush(self._heap, (wake, next(self._order), person))
        if wake < self._next_look:
            self._rearm.set()

    def http_session(self, new: Callable[[], FastHttpSession]) -> FastHttpSession:
        """An HTTP session for a person who starts: one a person before them left, or a new one."""
        return self._idle_http.pop() if self._idle_http else new()

    def ended(self, person: PersonInSession, reuse_http: bool = True) -> None:
        """The person's session is over: one fewer in a session; their HTTP session kept for the next person,
        cookies cleared (not one a stop cut short in the middle of a request)."""
        self._ended()
        if reuse_http:
            person.http.cookiejar.clear()
            self._idle_http.append(person.http)

    def stop(self) -> None:
        """The test ends: the clock stops, and every person still in a session ends as if stopped where they
        are (GreenletExit thrown into their session: one waiting to ask again is counted unfinished)."""
        if self._clock is not None:
            self._clock.kill()
            self._clock = None
        paused = [person for _, _, person in self._heap]
        self._heap.clear()
        while not self._due.empty():
            item = self._due.get_nowait()
            if isinstance(item, PersonInSession):
                paused.append(item)
        self._arrivals_due = 0
        for person in paused:
            with contextlib.suppress(GreenletExit, StopIteration):
                person.steps.throw(GreenletExit())  # type: ignore[attr-defined]
            self.ended(person)

    def _keep_time(self) -> None:
        heap, due, queue = self._heap, self._due, self.queue
        while True:
            now = self.clock()
            while heap and heap[0][0] <= now:
                due.put(heapq.heappop(heap)[2])
            while (claim := queue.claim_due()) is not None:
                self._arrivals_due += 1
                due.put(claim)
            self._next_look = min(heap[0][0] if heap else math.inf, queue.next_unix(), now + CLOCK_TICK_S)
            self._rearm.clear()
            self._rearm.wait(max(0.0, self._next_look - self.clock()))
