"""How many people a login capacity serves over a morning, and the capacity that serves a given share.

The undersized-2021 profile's national login rate is chosen with this model: the scenario's people arrive as
in a run (the same schedule), each login waits for admission in a first-come-first-served queue served at
the national rate (a token bucket: one second of burst), and fails after `timeout_s` without admission, as an
overloaded 2021 server did; a person whose attempt fails tries again by their group's retry policy until they
get in or their patience runs out (the personas' own rule, models/behaviour.py). The served share is the
share of the people due in the SLO window who got in. Pure and seeded: a scenario and a rate in, a share out.

It leaves out what the rate limit does not decide (the time the SSO flow itself takes, pages); the runs on
the embedded platform check it (docs/platform.md, "Calibration of undersized-2021").
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from schoolsurge.models.behaviour import next_retry_delay
from schoolsurge.models.schedule import build_schedule
from schoolsurge.scenario import Scenario

DEFAULT_SAMPLE_SCALE = 5e-4  # about 3,500 people of the first-day morning: a few tenths of a point of noise


@dataclass(frozen=True)
class LoginOutcome:
    tried: int  # people due in the SLO window
    served: int  # of those, people who got in
    gave_up: int
    attempts: int  # login attempts of those people, retries included

    @property
    def served_share(self) -> float:
        return self.served / self.tried if self.tried else 0.0

    @property
    def attempts_per_person(self) -> float:
        return self.attempts / self.tried if self.tried else 0.0


class _Admission:
    """First come, first served at `rate` per second with a one-second burst; an attempt not admitted within
    `timeout_s` of its arrival leaves (and takes no capacity): the generic cell rate algorithm."""

    def __init__(self, rate: float, timeout_s: float) -> None:
        self.interval = 1.0 / rate
        self.tolerance = max(0.0, rate - 1.0) * self.interval  # a one-second burst
        self.timeout_s = timeout_s
        self.theoretical = 0.0

    def admit(self, at: float) -> float | None:
        """The time the attempt made at `at` is admitted, or None when it times out first."""
        start = max(at, self.theoretical - self.tolerance)
        if start - at > self.timeout_s:
            return None
        self.theoretical = max(self.theoretical, start) + self.interval
        return start


def simulate_logins(
    scenario: Scenario, national_login_rate: float, timeout_s: float, scale: float = DEFAULT_SAMPLE_SCALE, seed: int = 0
) -> LoginOutcome:
    """The people of the SLO window who get in when logins are admitted at `national_login_rate` per second."""
    window = scenario.window
    judged = scenario.slo_window
    first, last = judged.start_s - window.start_s, judged.end_s - window.start_s
    schedule = build_schedule(scenario, scale, 1.0, seed)
    admission = _Admission(national_login_rate * scale, timeout_s)
    rng = random.Random(seed)
    groups = {group.name: group for group in scenario.groups}
    # (time of the attempt, person, arrival, retries done so far); heap order is time order.
    attempts: list[tuple[float, int, float, int]] = [(a.at_s, i, a.at_s, 0) for i, a in enumerate(schedule)]
    heapq.heapify(attempts)
    tried = served = gave_up = attempts_made = 0
    while attempts:
        at, person, arrival, retries = heapq.heappop(attempts)
        judged_person = first <= arrival < last
        attempts_made += judged_person
        if retries == 0:
            tried += judged_person
        if admission.admit(at) is not None:
            served += judged_person
            continue
        failed_at = at + timeout_s
        policy = groups[schedule[person].group].retry
        delay = next_retry_delay(policy, retries, failed_at - arrival, rng)
        if delay is None:
            gave_up += judged_person
            continue
        heapq.heappush(attempts, (failed_at + delay, person, arrival, retries + 1))
    return LoginOutcome(tried, served, gave_up, attempts_made)


def login_rate_for_share(
    scenario: Scenario,
    target_share: float,
    timeout_s: float,
    scale: float = DEFAULT_SAMPLE_SCALE,
    low: float = 1.0,
    high: float = 100_000.0,
    tolerance: float = 0.002,
) -> float:
    """The national login rate whose served share is `target_share` (bisection on a geometric scale)."""
    for _ in range(40):
        middle = (low * high) ** 0.5
        share = simulate_logins(scenario, middle, timeout_s, scale).served_share
        if abs(share - target_share) <= tolerance:
            return middle
        low, high = (middle, high) if share < target_share else (low, middle)
    return (low * high) ** 0.5
