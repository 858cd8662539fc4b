"""A person's random choices, drawn from the group's distributions: how long they stay, how long they pause,
what they do next, how long they wait before retrying a failed login.

Every duration here is in seconds of the SCENARIO's clock; the engine divides by the run's speed. The caller
owns the random generator (seeded per process), so a run is reproducible.
"""

from __future__ import annotations

import random

from schoolsurge.models.curves import lognormal_mu
from schoolsurge.scenario import Group, RetryPolicy


def _draw(distribution: str, mean: float, sigma: float | None, rng: random.Random) -> float:
    if distribution == "exponential":
        return rng.expovariate(1 / mean)
    if distribution == "lognormal":
        return rng.lognormvariate(lognormal_mu(mean, sigma), sigma)
    return mean  # constant


def draw_session_length(group: Group, rng: random.Random) -> float:
    """Seconds from this person's login to their leaving."""
    session = group.session
    return _draw(session.distribution, session.mean_minutes * 60, session.sigma, rng)


def draw_think_time(group: Group, rng: random.Random) -> float:
    """Seconds this person pauses between two pages."""
    think = group.think
    return _draw(think.distribution, think.mean_seconds, think.sigma, rng)


def draw_action(group: Group, rng: random.Random) -> str:
    """The next thing this person does, by the group's behaviour mix."""
    actions = list(group.behaviour)
    return rng.choices(actions, weights=[group.behaviour[a] for a in actions])[0]


def behaviour_shares(group: Group) -> dict[str, float]:
    """The behaviour mix as shares summing to 1."""
    total = sum(group.behaviour.values())
    return {action: weight / total for action, weight in group.behaviour.items()}


def next_retry_delay(policy: RetryPolicy, retries_done: int, waited_s: float, rng: random.Random) -> float | None:
    """Seconds to wait before the next login attempt after a failure, or None when the person gives up.

    retries_done: retries already made (0 after the first attempt failed); waited_s: seconds since the first
    attempt. A person gives up after max_retries retries, or when the next attempt would come after their
    patience has run out."""
    if retries_done >= policy.max_retries:
        return None
    if policy.backoff == "exponential-full-jitter":
        delay = rng.uniform(0, min(policy.cap_seconds, policy.base_seconds * 2**retries_done))
    else:  # impatient-reload: reloads again and again, a few seconds apart
        delay = rng.uniform(policy.base_seconds, policy.cap_seconds)
    if waited_s + delay > policy.patience_seconds:
        return None
    return delay


def expected_attempts(failure_probability: float, max_retries: int) -> float:
    """Login attempts per person when each fails independently with this probability (docs/facts.md, retry
    amplification): (1 - p^(r+1)) / (1 - p), r + 1 when every attempt fails."""
    p = failure_probability
    if not 0 <= p <= 1:
        raise ValueError(f"failure probability must be in [0, 1], got {p}")
    if p == 1:
        return float(max_retries + 1)
    return (1 - p ** (max_retries + 1)) / (1 - p)
