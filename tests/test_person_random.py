"""A person's random draws: reproducible per person, spread as the standard library's, and small."""

from __future__ import annotations

import statistics
import tracemalloc

from schoolsurge.models.person_random import person_random


def test_a_person_draws_the_same_in_any_process_and_people_differ() -> None:
    def draws(person: int) -> list[float]:
        rng = person_random(2021, "pupils", person)
        return [rng.random(), rng.expovariate(0.1), rng.lognormvariate(1.0, 0.5), rng.uniform(2, 10), rng.randrange(7)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    assert person_random(2021, "pupils", 5).random() != person_random(2022, "pupils", 5).random()
    assert person_random(2021, "pupils", 5).random() != person_random(2021, "parents", 5).random()


def test_draws_follow_their_distributions() -> None:
    rng = person_random(1, "g", 0)
    uniform = [rng.random() for _ in range(20000)]
    assert min(uniform) >= 0 and max(uniform) < 1
    assert abs(statistics.fmean(uniform) - 0.5) < 0.01
    assert abs(statistics.fmean(rng.expovariate(1 / 30) for _ in range(20000)) - 30) < 1.0
    counts = [0, 0, 0]
    for _ in range(30000):
        counts[rng.randrange(3)] += 1
    assert min(counts) > 9500
    assert rng.choice("abc") in "abc"


def test_a_persons_draws_take_a_few_dozen_bytes() -> None:
    """random.Random kept 2.5 KB of state for each person in a session."""
    tracemalloc.start()
    try:
        people = [person_random(2021, "pupils", n) for n in range(1000)]
        per_person = tracemalloc.get_traced_memory()[0] / len(people)
    finally:
        tracemalloc.stop()
    assert per_person < 200
