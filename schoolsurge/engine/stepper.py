"""People between two steps: paused sessions on the event loop's timer heap, and the work due for a free agent.

A person in a session spends most of it paused: reading a page, waiting to ask again, between two heartbeats.
A paused person holds no greenlet here: their session is a generator (personas/base.py) parked on a timer of
the event loop (libev's timer heap: a few dozen bytes, no stack) until the pause is over. What falls due is
handed to a free agent (a bounded pool of Locust users, shape.py), or queued for the next one: people whose
pause is over, and scheduled arrivals whose intended time has come, claimed from the ArrivalQueue then (one
timer, for the next arrival). The agent runs that person's session up to their next pause (agent.py). An arrival
that waits on the queue for a free agent starts late (counted with its delay) or, past the lateness limit, is
dropped (counted), as when agents claimed it themselves.

Each person in a session has their own HTTP session (cookies, a kept-alive connection, as a browser has);
a session whose person is done is kept, its cookies cleared, for the next person to come.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gevent import GreenletExit
from gevent.hub import Waiter
from locust.contrib.fasthttp import FastHttpSession

from schoolsurge.engine.queue import ArrivalQueue, Claim

CLOCK_TICK_S = 1.0  # the next arrival is looked for at least this often (a sweep's refinement changes it)


class PersonInSession:
    """A person in a session: their steps (the behaviour's generator), their HTTP session, and while they pause
    the timer that ends it."""

    __slots__ = ("http", "steps", "timer")

    def __init__(self, steps: Iterator[float], http: FastHttpSession) -> None:
        self.steps = steps
        self.http = http
        self.timer: Any = None


class StepScheduler:
    """One process's people between two steps and the work due for its agents."""

    def __init__(self, queue: ArrivalQueue, ended: Callable[[], None]) -> None:
        self.queue = queue
        self.clock = queue.clock
        self._ended = ended  # a person's session is over: the share counts one fewer in a session
        self._due: deque[PersonInSession | Claim] = deque()  # due, for the next free agent, oldest first
        self._arrivals_due = 0  # arrivals among them
        self._free: deque[Waiter[PersonInSession | Claim]] = deque()  # agents waiting for work
        self._paused: set[PersonInSession] = set()
        self._arrival_timer: Any = None
        self._stopped = False
        self._idle_http: list[FastHttpSession] = []

    @property
    def arrivals_waiting(self) -> int:
        """Arrivals due and waiting for a free agent."""
        return self._arrivals_due + self.queue.waiting()

    @property
    def waiting(self) -> int:
        """Everything due and waiting for a free agent: arrivals, and people whose pause is over."""
        return len(self._due) + self.queue.waiting()

    @property
    def paused(self) -> int:
        """People of this process in a pause."""
        return len(self._paused)

    @property
    def free_agents(self) -> int:
        """Agents of this process waiting for work (the others are running someone's step)."""
        return len(self._free)

    def start(self) -> None:
        """Look for due arrivals (once the schedule is loaded); again, a no-op."""
        if self._arrival_timer is None and not self._stopped:
            self._arm_arrivals()

    def take(self) -> PersonInSession | Claim:
        """The oldest work due (a person to resume, an arrival to start), waiting for one as long as it takes;
        an arrival too late to start is dropped (counted) and the next item taken."""
        while True:
            if self._due:
                item = self._due.popleft()
            else:
                free: Waiter[PersonInSession | Claim] = Waiter()
                self._free.append(free)
                try:
                    item = free.get()
                except BaseException:  # stopped while free: no work is handed to it any more
                    with contextlib.suppress(ValueError):
                        self._free.remove(free)
                    raise
            if isinstance(item, Claim):
                self._arrivals_due -= 1
                if self.queue.dropped_if_late(item):
                    continue
            return item

    def park(self, person: PersonInSession, pause_s: float) -> None:
        """The person pauses for pause_s seconds; handed to a free agent once it is over."""
        loop = gevent.get_hub().loop
        loop.update_now()  # the pause counts from now, not from the loop's last turn (as gevent.sleep does)
        timer = person.timer = loop.timer(max(0.0, pause_s))
        self._paused.add(person)
        timer.start(self._pause_over, person)

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
        """The test ends: no more work is handed out, and every person still in a session ends as if stopped
        where they are (GreenletExit thrown into their session: one waiting to ask again is counted unfinished)."""
        self._stopped = True
        if self._arrival_timer is not None:
            self._arrival_timer.close()
        stopped = list(self._paused) + [item for item in self._due if isinstance(item, PersonInSession)]
        self._paused.clear()
        self._due.clear()
        self._arrivals_due = 0
        for person in stopped:
            if person.timer is not None:
                person.timer.close()
                person.timer = None
            with contextlib.suppress(GreenletExit, StopIteration):
                person.steps.throw(GreenletExit())  # type: ignore[attr-defined]
            self.ended(person)

    # ---- in the event loop (the hub): hand what falls due to a free agent ------------------------------------

    def _pause_over(self, person: PersonInSession) -> None:
        person.timer.close()
        person.timer = None
        self._paused.discard(person)
        self._hand_over(person)

    def _arrivals_come(self) -> None:
        self._arrival_timer.close()
        while (claim := self.queue.claim_due()) is not None:
            self._arrivals_due += 1
            self._hand_over(claim)
        if not self._stopped:
            self._arm_arrivals()

    def _arm_arrivals(self) -> None:
        wait_s = min(self.queue.next_unix() - self.clock(), CLOCK_TICK_S)
        loop = gevent.get_hub().loop
        loop.update_now()
        self._arrival_timer = loop.timer(max(0.0, wait_s))
        self._arrival_timer.start(self._arrivals_come)

    def _hand_over(self, item: PersonInSession | Claim) -> None:
        if self._free:
            self._free.popleft().switch(item)  # runs that agent now, back here once it waits
        else:
            self._due.append(item)
