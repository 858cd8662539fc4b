"""A person's random choices, drawn from the group's distributions: how long they stay, how long they pause,
what they do next, how long they wait before retrying a failed login.

Every duration here is in seconds of the SCENARIO's clock; the engine divides by the run's speed. The caller
owns the random generator (seeded per person: models/person_random.py), so a run is reproducible.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from statistics import NormalDist

from schoolsurge.models.curves import lognormal_mu
from schoolsurge.models.person_random import PersonRandom
from schoolsurge.scenario import Group, RetryPolicy

Draws = PersonRandom | random.Random  # a person's own draws, or any generator a caller seeds


def _draw(distribution: str, mean: float, sigma: float | None, rng: Draws) -> float:
    if distribution == "exponential":
        return rng.expovariate(1 / mean)
    if distribution == "lognormal":
        return rng.lognormvariate(lognormal_mu(mean, sigma), sigma)
    return mean  # constant


GOLDEN_FRACTION = (5**0.5 - 1) / 2


def session_length(group: Group, person: int, seed: int) -> float:
    """Seconds person number `person` of the group stays, from the group's session-length distribution.

    Spread rather than drawn: person k takes the quantile frac(u + k x 0.618...) (a golden-ratio sequence from
    a seeded start u), so any run of consecutive people covers the distribution evenly and a small run's mean
    session is the distribution's, not a heavy-tailed draw around it. Person numbers are shuffled over the
    morning by the schedule, so lengths are not tied to arrival times. The same person stays as long in any
    process split."""
    start = random.Random(f"{seed}:{group.name}:session").random()
    quantile = (start + person * GOLDEN_FRACTION) % 1.0
    session = group.session
    mean_s = session.mean_minutes * 60
    if session.distribution == "exponential":
        return -mean_s * math.log1p(-quantile)
    z = NormalDist().inv_cdf(min(max(quantile, 1e-12), 1 - 1e-12))
    return math.exp(lognormal_mu(mean_s, session.sigma) + session.sigma * z)


def draw_think_time(group: Group, rng: Draws) -> float:
    """Seconds this person pauses between two pages."""
    think = group.think
    return _draw(think.distribution, think.mean_seconds, think.sigma, rng)


def draw_action(group: Group, rng: Draws) -> str:
    """The next thing this person does, by the group's behaviour mix (the draw rng.choices makes with the mix's
    weights, its cumulative weights computed once per group: this is on every page's path)."""
    mix = _MIXES.get(id(group))
    if mix is None or mix[0] is not group:
        weights = list(itertools.accumulate(group.behaviour.values()))
        mix = _MIXES[id(group)] = (group, list(group.behaviour), weights, weights[-1])
    _, actions, cumulative, total = mix
    return actions[bisect.bisect(cumulative, rng.random() * total, 0, len(actions) - 1)]


_MIXES: dict[int, tuple[Group, list[str], list[float], float]] = {}  # id(group) -> the group, its actions, weights


def behaviour_shares(group: Group) -> dict[str, float]:
    """The behaviour mix as shares summing to 1."""
    total = sum(group.behaviour.values())
    return {action: weight / total for action, weight in group.behaviour.items()}


def has_trait(person: int, share: float) -> bool:
    """Whether person number `person` of a group is one of the `share` who, say, hold a virtual class.

    Stratified rather than drawn: of the first n people exactly floor(n x share) have it (within one of
    round(n x share)), so a small run counts the planned number, not a binomial draw around it. Person numbers
    are shuffled over the morning by the schedule, so who has it is not tied to when they arrive."""
    return int((person + 1) * share) > int(person * share)


def next_retry_delay(policy: RetryPolicy, retries_done: int, waited_s: float, rng: Draws) -> float | None:
    """Seconds to wait before trying again after a failure (a login or a page), or None when the person gives up.

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
