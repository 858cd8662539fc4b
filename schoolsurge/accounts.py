"""Deterministic test accounts derived from (seed, pupils).

The reference platform seeds its database from this roster and the personas log in with the same
usernames and passwords, so no account file is needed for the embedded target. Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from functools import cached_property

PUPILS_PER_CLASS = 25
# FACTS.md: 869,300 teachers for 12.7M pupils.
TEACHERS_PER_PUPIL = 869_300 / 12_700_000
# Each teacher teaches this many classes; a class's first teacher (teacher index == class index) is the
# one who opens its virtual class.
CLASSES_PER_TEACHER = 2
MAX_CHILDREN_PER_PARENT = 3

ROLES = ("student", "teacher", "parent")


def username(role: str, index: int) -> str:
    """Login name of the index-th account of a role (stable across runs)."""
    prefix = {"student": "eleve", "teacher": "prof", "parent": "parent"}[role]
    return f"{prefix}.{index:07d}"


def password(seed: int, login: str) -> str:
    """Password of an account: derived from the seed so both sides agree without sharing a file."""
    return hashlib.sha256(f"schoolsurge:{seed}:{login}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Roster:
    """Who exists on the platform for a given (seed, pupils): counts and relations, by index."""

    seed: int
    pupils: int

    def __post_init__(self) -> None:
        if self.pupils < 1:
            raise ValueError(f"a roster needs at least one pupil, got {self.pupils}")

    @property
    def classes(self) -> int:
        return math.ceil(self.pupils / PUPILS_PER_CLASS)

    @property
    def teachers(self) -> int:
        # At least one teacher per class, so every class has someone to open its virtual class.
        return max(self.classes, round(self.pupils * TEACHERS_PER_PUPIL))

    def class_of_pupil(self, pupil: int) -> int:
        return pupil // PUPILS_PER_CLASS

    def classes_of_teacher(self, teacher: int) -> list[int]:
        return sorted({(teacher + k) % self.classes for k in range(CLASSES_PER_TEACHER)})

    def main_class_of_teacher(self, teacher: int) -> int:
        return teacher % self.classes

    @cached_property
    def families(self) -> tuple[tuple[int, ...], ...]:
        """Children (pupil indices) of each parent account, one to three siblings, seeded."""
        rng = random.Random(self.seed)
        # Shuffled so that siblings sit in different classes, as they usually do.
        order = list(range(self.pupils))
        rng.shuffle(order)
        families: list[tuple[int, ...]] = []
        start = 0
        while start < self.pupils:
            size = min(rng.choice((1, 1, 1, 2, 2, 3)), self.pupils - start, MAX_CHILDREN_PER_PARENT)
            families.append(tuple(sorted(order[start : start + size])))
            start += size
        return tuple(families)

    @property
    def parents(self) -> int:
        return len(self.families)

    def count(self, role: str) -> int:
        return {"student": self.pupils, "teacher": self.teachers, "parent": self.parents}[role]

    def credentials(self, role: str, index: int) -> tuple[str, str]:
        """(username, password) of the index-th account of a role; index wraps around the role's count."""
        login = username(role, index % self.count(role))
        return login, password(self.seed, login)
