"""The scaled and compressed schedule: who arrives when in a run, decided before the run starts.

Each group gets round(population x participation x scale) people. Their intended clock times are stratified
quantiles of the group's login-time curve truncated to the window: person k of n falls at quantile (k + U)/n,
U uniform in [0, 1), so the count in any stretch of the morning is within one of its expectation, per group.
Compression divides the time since the window's start by the speed. Same scenario, scale and seed: same schedule,
whatever the speed and however it is split between worker processes.

The whole run is sorted by intended start (ties: group order, then person) and shared out round-robin by that
position: part i of n holds the arrivals at positions i, i + n, i + 2n... so every stretch of the run is shared
out evenly (counts per part within one of each other in any window). A process builds only its own part
(`schedule_part`), as arrays (`ArrivalArrays`, 13 bytes an arrival): each group's times come out of the
quantiles already sorted, and an arrival's position in the whole run is its position in its group plus, for
every other group, how many of that group's arrivals come before it (a binary search in that group's sorted
times), so the whole run is never materialised. At scale 1 of first-day-2021 (7.1M people) a part takes 1-2 s
and at most about 170 MB at its peak (the whole run as one part; about 80 MB for a part of 16), as measured by
benchmarks/bench_engine.py. The parts are exactly the round-robin split of the whole sorted run that every
process used to build in full (tests/test_schedule.py checks it against that implementation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np

from schoolsurge.models.curves import window_cdf
from schoolsurge.models.population import logins_expected
from schoolsurge.scenario import Group, Scenario, Window

RANK_CHUNK = 1 << 18  # arrivals ranked at a time: bounds the temporary arrays of schedule_part (2 MB each)


@dataclass(frozen=True, slots=True)
class Arrival:
    at_s: float  # intended start, run seconds since the test started (already compressed by speed)
    group: str  # scenario group name
    person: int  # index of this person within its group's scaled people, 0-based, unique per group


@dataclass(frozen=True, eq=False)
class ArrivalArrays(Sequence[Arrival]):
    """Arrivals in start order as three parallel arrays (13 bytes an arrival, not an object each); indexing
    gives an `Arrival` (made on demand), slicing gives ArrivalArrays (views)."""

    at_s: np.ndarray  # float64, run seconds, ascending
    group: np.ndarray  # uint8 (uint16 past 255 groups): index into `groups`
    person: np.ndarray  # uint32
    groups: tuple[str, ...]  # the scenario's group names, in scenario order

    def __len__(self) -> int:
        return len(self.at_s)

    @overload
    def __getitem__(self, index: int) -> Arrival: ...

    @overload
    def __getitem__(self, index: slice) -> ArrivalArrays: ...

    def __getitem__(self, index: int | slice) -> Arrival | ArrivalArrays:
        if isinstance(index, slice):
            return ArrivalArrays(self.at_s[index], self.group[index], self.person[index], self.groups)
        return Arrival(float(self.at_s[index]), self.groups[self.group[index]], int(self.person[index]))

    def __iter__(self) -> Iterator[Arrival]:
        names = self.groups
        for at_s, group, person in zip(self.at_s.tolist(), self.group.tolist(), self.person.tolist(), strict=True):
            yield Arrival(at_s, names[group], person)

    def to_list(self) -> list[Arrival]:
        return list(self)

    def round_robin(self, parts: int, index: int) -> ArrivalArrays:
        """Part `index` of `parts` by position (compact copies)."""
        check_part(parts, index)
        return ArrivalArrays(
            self.at_s[index::parts].copy(),
            self.group[index::parts].copy(),
            self.person[index::parts].copy(),
            self.groups,
        )

    @property
    def nbytes(self) -> int:
        return self.at_s.nbytes + self.group.nbytes + self.person.nbytes


def group_index_dtype(groups: int) -> type[np.unsignedinteger]:
    return np.uint8 if groups <= 1 << 8 else np.uint16


def people_at_scale(group: Group, scale: float) -> int:
    """People of the group a run at this scale simulates."""
    return round(logins_expected(group) * scale)


def intended_clock_times(group: Group, window: Window, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` login clock times (seconds since midnight), ascending, by stratified inverse-CDF sampling."""
    cdf = window_cdf(group.login_time, window)
    grid = np.arange(window.start_s, window.end_s + 1, dtype=float)
    quantiles = np.arange(count, dtype=float)  # (k + U) / n, computed in place: the same values, fewer copies
    quantiles += rng.random(count)
    quantiles /= count
    return np.interp(quantiles, cdf, grid)


def check_scale_speed(scale: float, speed: float) -> None:
    if not 0 < scale <= 1:  # NaN fails this comparison too
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if not 0 < speed < math.inf:
        raise ValueError(f"speed must be a positive finite number, got {speed}")


def check_part(parts: int, index: int) -> None:
    if parts < 1:
        raise ValueError(f"parts must be at least 1, got {parts}")
    if not 0 <= index < parts:
        raise ValueError(f"index must be in [0, {parts}), got {index}")


def group_arrivals(
    group: Group, window: Window, count: int, speed: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One group's arrivals sorted by (run second, person): at_s (float64) and person numbers (uint32)."""
    at_s = intended_clock_times(group, window, count, rng)
    at_s -= window.start_s
    at_s /= speed
    # Person numbers are shuffled over the morning, so accounts (and their classes) are not in login order.
    persons = rng.permutation(count).astype(np.uint32)
    if count > 1 and bool(np.any(at_s[1:] <= at_s[:-1])):  # ties (or a curve's rounding): order them by person
        order = np.lexsort((persons, at_s))
        at_s, persons = at_s[order], persons[order]
    return at_s, persons


def _part_size(total: int, parts: int, index: int) -> int:
    return max(0, (total - index + parts - 1) // parts)


def schedule_part(
    scenario: Scenario, scale: float, speed: float, seed: int, parts: int = 1, index: int = 0
) -> ArrivalArrays:
    """Part `index` of `parts` of the run's arrivals (round-robin by position in the whole run, sorted by
    intended start, ties by group order then person), computed without the whole run's list."""
    check_scale_speed(scale, speed)
    if seed < 0:
        raise ValueError(f"seed must be zero or more, got {seed}")
    check_part(parts, index)
    window = scenario.window
    times: list[np.ndarray] = []
    persons: list[np.ndarray] = []
    for number, group in enumerate(scenario.groups):
        rng = np.random.default_rng([seed, number])  # one stream per group: adding a group moves no one else
        at_s, person = group_arrivals(group, window, people_at_scale(group, scale), speed, rng)
        times.append(at_s)
        persons.append(person)
    size = _part_size(sum(len(t) for t in times), parts, index)
    names = tuple(group.name for group in scenario.groups)
    part = ArrivalArrays(
        np.empty(size, dtype=np.float64),
        np.empty(size, dtype=group_index_dtype(len(names))),
        np.empty(size, dtype=np.uint32),
        names,
    )
    for number, at_s in enumerate(times):
        for start in range(0, len(at_s), RANK_CHUNK):
            chunk = at_s[start : start + RANK_CHUNK]
            # Position in the whole run: in its group, plus every other group's arrivals before it (a group
            # listed earlier goes first at the same second).
            rank = np.arange(start, start + len(chunk), dtype=np.int64)
            for other_number, other in enumerate(times):
                if other_number != number:
                    rank += np.searchsorted(other, chunk, side="right" if other_number < number else "left")
            person = persons[number][start : start + RANK_CHUNK]
            if parts > 1:
                rank -= index
                mine = rank % parts == 0
                rank = rank[mine] // parts
                chunk, person = chunk[mine], person[mine]
            part.at_s[rank] = chunk
            part.person[rank] = person
            part.group[rank] = number
        persons[number] = persons[number][:0]  # no longer needed: free it before the next group
    return part


def schedule_arrays(scenario: Scenario, scale: float, speed: float, seed: int) -> ArrivalArrays:
    """Every arrival of a run, as arrays, sorted by intended start (ties: group order, then person)."""
    return schedule_part(scenario, scale, speed, seed)


def build_schedule(scenario: Scenario, scale: float, speed: float, seed: int) -> list[Arrival]:
    """Every arrival of a run, sorted by intended start (ties: group order, then person)."""
    return schedule_arrays(scenario, scale, speed, seed).to_list()


def split_schedule(schedule: Sequence[Arrival], parts: int, index: int) -> list[Arrival]:
    """Part `index` of `parts` disjoint parts whose union is the schedule: round-robin by position, so every
    stretch of the run is shared out evenly (counts per part within one of each other)."""
    check_part(parts, index)
    return list(schedule[index::parts])
