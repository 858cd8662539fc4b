"""A person's own random draws, reproducible from (seed, group, person), in a few dozen bytes.

A `random.Random` per person kept 2.5 KB of Mersenne Twister state for each person in a session, more than a
tenth of what a person cost a load generator. `PersonRandom` keeps one 64-bit word: SplitMix64 (Steele, Lea and
Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014), seeded from a hash of the person's key, so
the same person draws the same in any process split. Its distributions are the standard library's own
(random.Random's methods, which need only `random()` and `getrandbits()`), so they draw as they always have.
"""

from __future__ import annotations

import hashlib
from random import Random as _Random  # its methods, borrowed below (the name `random` is a method here)

_MASK64 = (1 << 64) - 1
_GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_FLOAT_UNIT = 1.0 / (1 << 53)


class PersonRandom:
    """Draws for one person: random(), uniform(), expovariate(), lognormvariate(), randrange(), choice()..."""

    __slots__ = ("_state",)

    def __init__(self, key: str) -> None:
        self._state = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")

    def _next64(self) -> int:
        self._state = state = (self._state + _GOLDEN_GAMMA) & _MASK64
        state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & _MASK64
        return state ^ (state >> 31)

    def random(self) -> float:
        """A float in [0, 1), from the word's 53 high bits."""
        return (self._next64() >> 11) * _FLOAT_UNIT

    def getrandbits(self, k: int) -> int:
        """k random bits (k <= 64: what randrange and choice ask for a person's few choices)."""
        if not 0 <= k <= 64:
            raise ValueError(f"getrandbits({k}): at most 64 bits")
        return self._next64() >> (64 - k) if k else 0

    # The standard library's distributions, each written on random() and getrandbits() alone.
    uniform = _Random.uniform
    expovariate = _Random.expovariate
    normalvariate = _Random.normalvariate
    lognormvariate = _Random.lognormvariate
    randrange = _Random.randrange
    choice = _Random.choice
    _randbelow = _Random._randbelow_with_getrandbits


def person_random(seed: int, group: str, person: int) -> PersonRandom:
    """The draws of person number `person` of `group` in a run of `seed`."""
    return PersonRandom(f"{seed}:{group}:{person}")
