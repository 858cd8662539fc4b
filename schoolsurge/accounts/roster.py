"""Deterministic test accounts derived from (seed, pupils).

The reference platform seeds its database from this roster and the personas log in with the same
usernames and passwords, so no account file is needed for the embedded target. Pure functions, no I/O.

Pupils are split over the school levels in the national proportions of docs/facts.md#population; each
level's pupils have contiguous indices (maternelle first, lycée professionnel last), and so do its classes.
A primary class has one teacher; a secondary class has several, each teaching several classes. One parent
account covers all the siblings of a family (docs/facts.md#timing-and-behaviour, ÉduConnect).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property

# docs/facts.md#population (school year 2020-21): pupils per level in France.
LEVELS = ("maternelle", "elementaire", "college", "lycee_gt", "lycee_pro")
NATIONAL_PUPILS = {
    "maternelle": 2_397_000,
    "elementaire": 4_167_000,
    "college": 3_429_000,
    "lycee_gt": 1_612_000,
    "lycee_pro": 645_000,
}
PRIMARY_LEVELS = ("maternelle", "elementaire")
SECONDARY_LEVELS = ("college", "lycee_gt", "lycee_pro")
# Average pupils per class, rounded DEPP figures (an estimate: docs/facts.md#assumptions-of-this-project).
CLASS_SIZE = {"maternelle": 24, "elementaire": 22, "college": 25, "lycee_gt": 30, "lycee_pro": 19}
# docs/facts.md#population: 869,300 teachers for 12.7M pupils.
TEACHERS_PER_PUPIL = 869_300 / 12_700_000
# A secondary teacher teaches several classes; a primary teacher has one class of their own.
SECONDARY_CLASSES_PER_TEACHER = 4
# docs/facts.md#population: 8.0M families with a minor child for 12.7M pupils, about 1.59 pupils per family (estimate);
# these weights of one, two and three children give that mean.
CHILDREN_WEIGHTS = {1: 0.52, 2: 0.37, 3: 0.11}

ROLES = ("student", "teacher", "parent")


def username(role: str, index: int) -> str:
    """Login name of the index-th account of a role (stable across runs)."""
    prefix = {"student": "eleve", "teacher": "prof", "parent": "parent"}[role]
    return f"{prefix}.{index:07d}"


def password(seed: int, login: str) -> str:
    """Password of an account: derived from the seed so both sides agree without sharing a file."""
    return hashlib.sha256(f"schoolsurge:{seed}:{login}".encode()).hexdigest()[:16]


def apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split `total` in proportion to `weights` with whole numbers that add up (largest remainder)."""
    whole = sum(weights.values())
    exact = {k: total * w / whole for k, w in weights.items()}
    shares = {k: math.floor(v) for k, v in exact.items()}
    by_remainder = sorted(weights, key=lambda k: (shares[k] - exact[k], list(weights).index(k)))
    for key in by_remainder[: total - sum(shares.values())]:
        shares[key] += 1
    return shares


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


@dataclass(frozen=True)
class Roster:
    """Who exists on the platform for a given (seed, pupils): counts and relations, by index."""

    seed: int
    pupils: int

    def __post_init__(self) -> None:
        if self.pupils < 1:
            raise ValueError(f"a roster needs at least one pupil, got {self.pupils}")

    # ---- levels and classes -------------------------------------------------------------------------

    @cached_property
    def level_pupils(self) -> dict[str, int]:
        """Pupils per level, in the national proportions."""
        return apportion(self.pupils, NATIONAL_PUPILS)

    @cached_property
    def level_classes(self) -> dict[str, int]:
        return {level: math.ceil(n / CLASS_SIZE[level]) for level, n in self.level_pupils.items()}

    @cached_property
    def _pupil_starts(self) -> list[int]:
        return _starts(self.level_pupils[level] for level in LEVELS)

    @cached_property
    def _class_starts(self) -> list[int]:
        return _starts(self.level_classes[level] for level in LEVELS)

    def pupils_of_level(self, level: str) -> range:
        _check_level(level)
        k = LEVELS.index(level)
        return range(self._pupil_starts[k], self._pupil_starts[k + 1])

    def classes_of_level(self, level: str) -> range:
        _check_level(level)
        k = LEVELS.index(level)
        return range(self._class_starts[k], self._class_starts[k + 1])

    def level_of_pupil(self, pupil: int) -> str:
        self._check_index("student", pupil)
        return LEVELS[bisect.bisect_right(self._pupil_starts, pupil) - 1]

    def level_of_class(self, class_id: int) -> str:
        if not 0 <= class_id < self.classes:
            raise ValueError(f"class {class_id} out of range 0..{self.classes - 1}")
        return LEVELS[bisect.bisect_right(self._class_starts, class_id) - 1]

    @property
    def classes(self) -> int:
        return self._class_starts[-1]

    @property
    def primary_classes(self) -> int:
        """Primary classes come first: class ids 0 .. primary_classes - 1."""
        return sum(self.level_classes[level] for level in PRIMARY_LEVELS)

    def class_of_pupil(self, pupil: int) -> int:
        level = self.level_of_pupil(pupil)
        first, n, k = self.pupils_of_level(level).start, self.level_pupils[level], self.level_classes[level]
        # Spread evenly, so a level's last class is not left with a handful of pupils.
        return self.classes_of_level(level).start + (pupil - first) * k // n

    def pupils_of_class(self, class_id: int) -> range:
        level = self.level_of_class(class_id)
        first, n, k = self.pupils_of_level(level).start, self.level_pupils[level], self.level_classes[level]
        m = class_id - self.classes_of_level(level).start
        # Inverse of class_of_pupil: pupils j with floor(j*k/n) == m.
        return range(first + -(-m * n // k), first + -(-(m + 1) * n // k))

    # ---- teachers -----------------------------------------------------------------------------------

    @property
    def teachers(self) -> int:
        # At least one teacher per class, so every class has someone to open its virtual class.
        return max(self.classes, round(self.pupils * TEACHERS_PER_PUPIL))

    def classes_of_teacher(self, teacher: int) -> list[int]:
        self._check_index("teacher", teacher)
        return sorted(self._classes_of_teacher(teacher))

    def main_class_of_teacher(self, teacher: int) -> int:
        """The class whose virtual class this teacher opens; teacher t < classes is class t's main teacher."""
        self._check_index("teacher", teacher)
        return self._classes_of_teacher(teacher)[0]

    def _classes_of_teacher(self, teacher: int) -> list[int]:
        primary = self.primary_classes
        secondary = self.classes - primary
        if teacher < primary:
            return [teacher]
        if secondary == 0:
            return [teacher % primary]  # extra teachers of an all-primary roster share a class
        offset = teacher - primary
        per_teacher = min(SECONDARY_CLASSES_PER_TEACHER, secondary)
        return [primary + (offset + j) % secondary for j in range(per_teacher)]

    # ---- families -----------------------------------------------------------------------------------

    @cached_property
    def families(self) -> tuple[tuple[int, ...], ...]:
        """Children (pupil indices) of each parent account, one to three siblings, seeded."""
        rng = random.Random(self.seed)
        # Shuffled so that siblings sit in different classes and levels, as they usually do.
        order = list(range(self.pupils))
        rng.shuffle(order)
        sizes, weights = list(CHILDREN_WEIGHTS), list(CHILDREN_WEIGHTS.values())
        families: list[tuple[int, ...]] = []
        start = 0
        while start < self.pupils:
            size = min(rng.choices(sizes, weights)[0], self.pupils - start)
            families.append(tuple(sorted(order[start : start + size])))
            start += size
        return tuple(families)

    @property
    def parents(self) -> int:
        return len(self.families)

    @cached_property
    def _parent_of_pupil(self) -> tuple[int, ...]:
        parent_of = [0] * self.pupils
        for parent, children in enumerate(self.families):
            for child in children:
                parent_of[child] = parent
        return tuple(parent_of)

    def parent_of_pupil(self, pupil: int) -> int:
        self._check_index("student", pupil)
        return self._parent_of_pupil[pupil]

    @cached_property
    def _parents_by_level(self) -> dict[str, tuple[int, ...]]:
        by_level: dict[str, set[int]] = {level: set() for level in LEVELS}
        for parent, children in enumerate(self.families):
            for child in children:
                by_level[self.level_of_pupil(child)].add(parent)
        return {level: tuple(sorted(parents)) for level, parents in by_level.items()}

    def parents_of_level(self, level: str) -> tuple[int, ...]:
        """Parent indices with at least one child at this level, ascending."""
        _check_level(level)
        return self._parents_by_level[level]

    # ---- accounts -----------------------------------------------------------------------------------

    def count(self, role: str) -> int:
        return {"student": self.pupils, "teacher": self.teachers, "parent": self.parents}[role]

    def credentials(self, role: str, index: int) -> tuple[str, str]:
        """(username, password) of the index-th account of a role; index wraps around the role's count."""
        login = username(role, index % self.count(role))
        return login, password(self.seed, login)

    def _check_index(self, role: str, index: int) -> None:
        if not 0 <= index < self.count(role):
            raise ValueError(f"{role} index {index} out of range 0..{self.count(role) - 1}")


def smallest_roster(accounts: Mapping[str, int]) -> int:
    """The fewest pupils of a roster with at least these accounts of each role (its teachers and parents follow
    from its pupils; seed 0's families), grown 5% at a time: every account is hashed when the platform is seeded,
    so a capacity sweep seeds no more than its people cycle through."""
    pupils = max(1, accounts.get("student", 0))
    while any(Roster(0, pupils).count(role) < count for role, count in accounts.items()):
        pupils = math.ceil(pupils * 1.05) + 1
    return pupils


def _starts(counts: Iterable[int]) -> list[int]:
    starts = [0]
    for n in counts:
        starts.append(starts[-1] + n)
    return starts
