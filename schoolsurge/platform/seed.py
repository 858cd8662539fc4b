"""Deterministic seeding of the reference platform's database from the shared roster.

Accounts, usernames and passwords come from `schoolsurge.accounts.Roster`, so the load generator can log in
without an account file; display names, schools, timetables and homework come from Faker (fr_FR) and a
`random.Random`, both seeded, so the same (seed, size) always gives the same platform. Only the bcrypt salts
differ between builds. A built file is cached and reused when its meta table matches.
"""

from __future__ import annotations

import math
import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
from faker import Faker

from schoolsurge.accounts import ROLES, Roster
from schoolsurge.platform import db

CLASSES_PER_SCHOOL = 10
SURGE_DAY = "2021-04-06"
HOMEWORK_DUE = ("2021-04-07", "2021-04-08", "2021-04-09")
# Below this much bcrypt work (accounts x 2**cost) a process pool costs more than it saves.
POOL_THRESHOLD = 2**16

SCHOOL_KINDS: dict[str, tuple[str, ...]] = {
    "école élémentaire": ("CP", "CE1", "CE2", "CM1", "CM2"),
    "collège": ("6e", "5e", "4e", "3e"),
    "lycée": ("2nde", "1re", "Tle"),
}
SUBJECTS = {
    "école élémentaire": ("Français", "Mathématiques", "Questionner le monde", "Anglais", "Arts plastiques"),
    "collège": ("Français", "Mathématiques", "Histoire-géographie", "Anglais", "SVT", "Physique-chimie"),
    "lycée": ("Philosophie", "Mathématiques", "Histoire-géographie", "Anglais", "SES", "Physique-chimie"),
}
# Primary schools start at 8:30, secondary at 8:00 (FACTS.md, "Timing and behaviour").
SLOTS = {
    "école élémentaire": (("08:30", "09:30"), ("09:30", "10:30"), ("10:45", "11:30"), ("13:30", "15:00")),
    "collège": (("08:00", "09:00"), ("09:00", "10:00"), ("10:15", "11:15"), ("11:15", "12:15")),
    "lycée": (("08:00", "09:00"), ("09:00", "10:00"), ("10:15", "11:15"), ("11:15", "12:15")),
}
HOMEWORK_TEMPLATES = (
    "Exercices {a} à {b} page {page}.",
    "Lire le chapitre {a} et répondre aux questions de la page {page}.",
    "Apprendre la leçon {a} pour la classe virtuelle.",
    "Rédiger un paragraphe de {b} lignes sur le document page {page}.",
)


@dataclass
class Plan:
    """Every row of the static data, before passwords are hashed."""

    schools: list[tuple[int, str, str]] = field(default_factory=list)
    classes: list[tuple[int, int, str]] = field(default_factory=list)
    # (username, password, role, idx, display_name, class_id)
    accounts: list[tuple[str, str, str, int, str, int | None]] = field(default_factory=list)
    teacher_classes: list[tuple[int, int]] = field(default_factory=list)  # (teacher idx, class id)
    parent_children: list[tuple[int, int]] = field(default_factory=list)  # (parent idx, pupil idx)
    lessons: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    homework: list[tuple[int, str, str, str]] = field(default_factory=list)


def default_db_path(seed: int, size: int, hash_cost: int) -> Path:
    return Path(".cache") / f"platform-{seed}-{size}-{hash_cost}.sqlite3"


def plan(seed: int, size: int) -> Plan:
    """All static rows for (seed, size); pure and deterministic (given the installed Faker version)."""
    roster = Roster(seed, size)
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(f"schoolsurge-platform:{seed}")
    out = Plan()

    kinds = list(SCHOOL_KINDS)
    for school in range(math.ceil(roster.classes / CLASSES_PER_SCHOOL)):
        kind = kinds[school % len(kinds)]
        out.schools.append((school, f"{kind.capitalize()} {fake.first_name()} {fake.last_name()}", kind))
    for class_id in range(roster.classes):
        school, k = divmod(class_id, CLASSES_PER_SCHOOL)
        kind = out.schools[school][2]
        levels = SCHOOL_KINDS[kind]
        level, letter = levels[k % len(levels)], chr(ord("A") + k // len(levels))
        name = f"{level}-{letter}" if kind == "école élémentaire" else f"{level}{letter}"
        out.classes.append((class_id, school, name))
        subjects = SUBJECTS[kind]
        for start, end in SLOTS[kind]:
            out.lessons.append((class_id, SURGE_DAY, start, end, rng.choice(subjects)))
        for due in HOMEWORK_DUE:
            a, page = rng.randint(1, 12), rng.randint(10, 220)
            text = rng.choice(HOMEWORK_TEMPLATES).format(a=a, b=a + rng.randint(1, 5), page=page)
            out.homework.append((class_id, rng.choice(subjects), due, text))

    # Siblings share their parent's family name, so names come family by family.
    pupil_names: dict[int, str] = {}
    parent_names: list[str] = []
    for parent, children in enumerate(roster.families):
        last = fake.last_name()
        parent_names.append(f"{fake.first_name()} {last}")
        for child in children:
            pupil_names[child] = f"{fake.first_name()} {last}"
            out.parent_children.append((parent, child))
    teacher_names = [
        f"{rng.choice(('Mme', 'M.'))} {fake.first_name()} {fake.last_name()}" for _ in range(roster.teachers)
    ]

    names = {"student": pupil_names, "teacher": teacher_names, "parent": parent_names}
    for role in ROLES:
        for idx in range(roster.count(role)):
            login, secret = roster.credentials(role, idx)
            class_id = roster.class_of_pupil(idx) if role == "student" else None
            out.accounts.append((login, secret, role, idx, names[role][idx], class_id))
    for teacher in range(roster.teachers):
        out.teacher_classes.extend((teacher, c) for c in roster.classes_of_teacher(teacher))
    return out


def _hash_chunk(passwords: list[str], cost: int) -> list[bytes]:
    return [bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=cost)) for p in passwords]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def hash_passwords(passwords: list[str], cost: int, log: Callable[[str], None]) -> list[bytes]:
    """bcrypt every password over all cores (bcrypt is CPU-bound), logging progress every 10%."""
    total = len(passwords)
    workers = os.cpu_count() or 1
    if workers == 1 or total * 2**cost < POOL_THRESHOLD:
        return _hash_chunk(passwords, cost)
    # Small chunks keep the progress line moving and the cores evenly loaded at the end.
    chunk = max(1, total // (workers * 25))
    hashes: list[bytes] = []
    next_report = 10
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(_hash_chunk, _chunks(passwords, chunk), [cost] * math.ceil(total / chunk)):
            hashes.extend(done)
            while len(hashes) * 100 >= next_report * total and next_report <= 100:
                log(f"hashing passwords: {next_report}% ({len(hashes)}/{total})")
                next_report += 10
    return hashes


def is_cached(path: Path, seed: int, size: int, hash_cost: int) -> bool:
    meta = db.read_meta(path)
    wanted = {"seed": str(seed), "size": str(size), "hash_cost": str(hash_cost)}
    return (
        meta.get("complete") == "1"
        and meta.get("schema_version") == db.SCHEMA_VERSION
        and all(meta.get(k) == v for k, v in wanted.items())
    )


def _stderr(message: str) -> None:
    print(f"[platform] {message}", file=sys.stderr, flush=True)


def ensure_database(path: Path, seed: int, size: int, hash_cost: int, log: Callable[[str], None] = _stderr) -> bool:
    """Make `path` a complete database for (seed, size, hash_cost); return True if built, False if reused."""
    path = Path(path)
    if is_cached(path, seed, size, hash_cost):
        log(f"reusing cached database {path}")
        return False
    build_database(path, seed, size, hash_cost, log)
    return True


def build_database(path: Path, seed: int, size: int, hash_cost: int, log: Callable[[str], None]) -> None:
    """Build into a temporary file beside `path`, then rename: an interrupted build leaves nothing behind."""
    started = time.perf_counter()
    rows = plan(seed, size)
    log(f"seeding {path}: {len(rows.accounts)} accounts, {len(rows.classes)} classes, bcrypt cost {hash_cost}")
    hashes = hash_passwords([a[1] for a in rows.accounts], hash_cost, log)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            _write(conn, rows, hashes, seed, size, hash_cost)
        finally:
            conn.close()
        # WAL and shared-memory files of an older database would be replayed into the new one.
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log(f"seeded {path} in {time.perf_counter() - started:.1f}s")


def _write(conn: sqlite3.Connection, rows: Plan, hashes: list[bytes], seed: int, size: int, hash_cost: int) -> None:
    # A scratch file: no journal needed, it is thrown away if anything fails.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    db.create_schema(conn)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO schools (id, name, kind) VALUES (?, ?, ?)", rows.schools)
    conn.executemany("INSERT INTO classes (id, school_id, name) VALUES (?, ?, ?)", rows.classes)
    conn.executemany(
        "INSERT INTO accounts (username, role, idx, display_name, password_hash, class_id) VALUES (?, ?, ?, ?, ?, ?)",
        [(u, role, idx, name, h, c) for (u, _, role, idx, name, c), h in zip(rows.accounts, hashes, strict=True)],
    )
    ids = {(r, i): a for a, r, i in conn.execute("SELECT id, role, idx FROM accounts")}
    conn.executemany(
        "INSERT INTO teacher_classes (teacher_id, class_id) VALUES (?, ?)",
        [(ids["teacher", t], c) for t, c in rows.teacher_classes],
    )
    conn.executemany(
        "INSERT INTO parent_children (parent_id, child_id) VALUES (?, ?)",
        [(ids["parent", p], ids["student", s]) for p, s in rows.parent_children],
    )
    conn.executemany('INSERT INTO lessons (class_id, day, start, "end", subject) VALUES (?, ?, ?, ?, ?)', rows.lessons)
    conn.executemany("INSERT INTO homework (class_id, subject, due, text) VALUES (?, ?, ?, ?)", rows.homework)
    meta = {
        "schema_version": db.SCHEMA_VERSION,
        "seed": str(seed),
        "size": str(size),
        "hash_cost": str(hash_cost),
        "accounts": str(len(rows.accounts)),
        "build_id": uuid.uuid4().hex,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # Written last, in the same transaction: a file without it is never reused.
        "complete": "1",
    }
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
    conn.execute("COMMIT")
