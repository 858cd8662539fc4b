"""Arrival hand-out: in order, on time when an agent is free, late or dropped (and counted) when not."""

from __future__ import annotations

from dataclasses import dataclass

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.queue import ArrivalQueue


@dataclass(frozen=True)
class Arrival:
    at_s: float
    group: str = "pupils"
    person: int = 0


class Clock:
    """A settable clock: the queue's decisions depend only on time, so tests set it instead of sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _queue(times: list[float], clock: Clock) -> tuple[ArrivalQueue, Ledger]:
    ledger = Ledger()
    queue = ArrivalQueue(ledger, late_after_s=1.0, drop_after_s=10.0, clock=clock)
    queue.load([Arrival(t, person=i) for i, t in enumerate(times)], start_unix=clock.now)
    return queue, ledger


def test_claims_come_in_intended_order_and_on_time_starts_are_not_late() -> None:
    clock = Clock()
    queue, ledger = _queue([0.5, 2.0, 2.0, 7.0], clock)
    claims = [queue.claim() for _ in range(4)]
    assert [c.arrival.at_s for c in claims] == [0.5, 2.0, 2.0, 7.0]
    assert queue.claim() is None and queue.remaining == 0
    for claim in claims:
        clock.now = claim.intended_unix  # the agent slept until the intended time
        assert queue.started(claim) == 0.0
    assert ledger.total("scheduled") == ledger.total("started") == 4
    assert ledger.total("late") == ledger.total("dropped") == 0


def test_late_starts_are_counted_with_their_delay_and_stale_ones_dropped() -> None:
    clock = Clock()
    queue, ledger = _queue([0.0, 1.0, 2.0, 30.0], clock)
    clock.now += 3.0  # no agent was free for three seconds
    assert queue.waiting() == 3
    first = queue.claim()
    assert queue.started(first) == 3.0
    clock.now += 9.0  # twelve seconds after the start: arrival 1.0 is 11 s late -> dropped, 2.0 is 10 s late
    second = queue.claim()
    assert second.arrival.at_s == 2.0
    assert ledger.total("dropped") == 1
    queue.started(second)
    assert ledger.total("late") == 2
    assert ledger.seconds[0].start_delay_max_ms == 3000
    assert ledger.total("scheduled") == ledger.total("started") + ledger.total("dropped") + queue.remaining


def test_waiting_counts_only_due_unclaimed_arrivals() -> None:
    clock = Clock()
    queue, _ = _queue([1.0, 2.0, 50.0], clock)
    assert queue.waiting() == 0
    clock.now += 5
    assert queue.waiting() == 2
    queue.claim()
    assert queue.waiting() == 1
