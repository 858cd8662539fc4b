"""Deterministic seeding of the reference platform's database from the shared roster.

Accounts, usernames and passwords come from `schoolsurge.accounts.Roster`, so the load generator can log in
without an account file; display names, schools, timetables and homework come from Faker (fr_FR) and a
`random.Random`, both seeded, so the same (seed, size) always gives the same platform. Only the bcrypt salts
differ between builds. A built file is cached by (seed, size, hash cost) and reused when its meta table matches.

Passwords are hashed lazily: each account is seeded with a random bcrypt salt of the hash cost (29 bytes,
"$2b$10$" and 22 characters) in place of its hash, and its first login does the hashing (security.verify_password
and Platform.check_credentials): it pays the full bcrypt cost, right password or wrong, and stores the hash of a
right one, which every later login checks. Hashing 215,000 accounts at cost 10 up front would take two hours on
two cores; salts take a fraction of a second, and no login is any cheaper than on a platform hashed in advance.

The cache is never served: `prepare_database` gives each server a database file of its own, a copy of the
cache, so two servers started from the same cached seed never share (or wipe) each other's sessions.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from schoolsurge.accounts import LEVELS, PRIMARY_LEVELS, ROLES, Roster
from schoolsurge.platform import db

SURGE_DAY = "2021-04-06"
# The week of the surge: Monday 5 April 2021 was Easter Monday, a public holiday.
WEEK = ("2021-04-06", "2021-04-07", "2021-04-08", "2021-04-09")
WEDNESDAY = "2021-04-07"
HOMEWORK_DUE = ("2021-04-07", "2021-04-08", "2021-04-09")


@dataclass(frozen=True)
class LevelLayout:
    school_kind: str
    classes_per_school: int
    grades: tuple[str, ...]
    subjects: tuple[str, ...]
    # (start, end) of each lesson: primary schools start at 8:30, secondary at 8:00 (docs/facts.md#timing-and-behaviour)
    slots: tuple[tuple[str, str], ...]
    wednesday_slots: int  # lessons on Wednesday morning


PRIMARY_SLOTS = (("08:30", "10:00"), ("10:15", "11:30"), ("13:30", "15:00"), ("15:15", "16:30"))
SECONDARY_SLOTS = (
    ("08:00", "09:00"),
    ("09:00", "10:00"),
    ("10:15", "11:15"),
    ("11:15", "12:15"),
    ("14:00", "15:00"),
    ("15:00", "16:00"),
)
LAYOUT = {
    "maternelle": LevelLayout(
        "école maternelle",
        4,
        ("PS", "MS", "GS"),
        ("Langage", "Explorer le monde", "Activités physiques", "Activités artistiques"),
        PRIMARY_SLOTS,
        0,
    ),
    "elementaire": LevelLayout(
        "école élémentaire",
        8,
        ("CP", "CE1", "CE2", "CM1", "CM2"),
        ("Français", "Mathématiques", "Questionner le monde", "Anglais", "Arts plastiques"),
        PRIMARY_SLOTS,
        0,
    ),
    "college": LevelLayout(
        "collège",
        16,
        ("6e", "5e", "4e", "3e"),
        ("Français", "Mathématiques", "Histoire-géographie", "Anglais", "SVT", "Physique-chimie"),
        SECONDARY_SLOTS,
        4,
    ),
    "lycee_gt": LevelLayout(
        "lycée",
        24,
        ("2nde", "1re", "Tle"),
        ("Philosophie", "Mathématiques", "Histoire-géographie", "Anglais", "SES", "Physique-chimie"),
        SECONDARY_SLOTS,
        4,
    ),
    "lycee_pro": LevelLayout(
        "lycée professionnel",
        12,
        ("2nde pro", "1re pro", "Tle pro"),
        ("Enseignement professionnel", "Français", "Mathématiques", "Anglais", "Prévention santé environnement"),
        SECONDARY_SLOTS,
        4,
    ),
}
HOMEWORK_TEMPLATES = (
    "Exercices {a} à {b} page {page}.",
    "Lire le chapitre {a} et répondre aux questions de la page {page}.",
    "Apprendre la leçon {a} pour la classe virtuelle.",
    "Rédiger un paragraphe de {b} lignes sur le document page {page}.",
)
MESSAGES = {
    "student": (
        "Classe virtuelle ce matin",
        "Bonjour à tous, rendez-vous en classe virtuelle à {time}. Pensez à votre cahier. {sender}",
    ),
    "parent": (
        "Continuité pédagogique",
        "Madame, Monsieur, l'école est à la maison à partir du 6 avril. Le travail est dans le cahier de textes. "
        "{sender}",
    ),
    "teacher": (
        "Organisation de la semaine",
        "Chers collègues, merci d'ouvrir vos classes virtuelles aux heures habituelles. {sender}",
    ),
}


@dataclass
class Plan:
    """Every row of the static data, before passwords are hashed."""

    schools: list[tuple[int, str, str]] = field(default_factory=list)
    classes: list[tuple[int, int, str, str]] = field(default_factory=list)  # (id, school, name, level)
    # (username, password, role, idx, display_name, class_id)
    accounts: list[tuple[str, str, str, int, str, int | None]] = field(default_factory=list)
    teacher_classes: list[tuple[int, int]] = field(default_factory=list)  # (teacher idx, class id)
    parent_children: list[tuple[int, int]] = field(default_factory=list)  # (parent idx, pupil idx)
    lessons: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    homework: list[tuple[int, str, str, str]] = field(default_factory=list)
    # (class id, audience, sender, subject, body, sent_at)
    messages: list[tuple[int, str, str, str, str, str]] = field(default_factory=list)


def cache_path(cache_dir: Path, seed: int, size: int, hash_cost: int) -> Path:
    return Path(cache_dir) / f"platform-{seed}-{size}-{hash_cost}.sqlite3"


def plan(seed: int, size: int) -> Plan:
    """All static rows for (seed, size); pure and deterministic (given the installed Faker version)."""
    from faker import Faker  # here, not at the top: only a first start seeds, every start imports this module

    roster = Roster(seed, size)
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(f"schoolsurge-platform:{seed}")
    out = Plan()

    for level in LEVELS:
        layout = LAYOUT[level]
        level_classes = roster.classes_of_level(level)
        for k, class_id in enumerate(level_classes):
            nth = k % layout.classes_per_school
            if nth == 0:
                name = f"{layout.school_kind.capitalize()} {fake.first_name()} {fake.last_name()}"
                out.schools.append((len(out.schools), name, layout.school_kind))
            grade, letter = layout.grades[nth % len(layout.grades)], chr(ord("A") + nth // len(layout.grades))
            class_name = f"{grade}-{letter}" if level in PRIMARY_LEVELS else f"{grade} {letter}"
            out.classes.append((class_id, len(out.schools) - 1, class_name, level))
            for day in WEEK:
                slots = layout.slots[: layout.wednesday_slots] if day == WEDNESDAY else layout.slots
                for start, end in slots:
                    out.lessons.append((class_id, day, start, end, rng.choice(layout.subjects)))
            for due in HOMEWORK_DUE:
                a, page = rng.randint(1, 12), rng.randint(10, 220)
                text = rng.choice(HOMEWORK_TEMPLATES).format(a=a, b=a + rng.randint(1, 5), page=page)
                out.homework.append((class_id, rng.choice(layout.subjects), due, text))

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

    # Teacher t < classes is class t's main teacher (Roster.main_class_of_teacher).
    for class_id, school_id, _, level in out.classes:
        senders = {
            "student": teacher_names[class_id],
            "parent": teacher_names[class_id],
            "teacher": f"La direction, {out.schools[school_id][1]}",
        }
        time = LAYOUT[level].slots[0][0]
        for audience, (subject, body) in MESSAGES.items():
            if audience == "student" and level == "maternelle":
                continue  # nobody writes to a three-year-old: their parents read for them
            sender = senders[audience]
            sent_at = f"2021-04-0{rng.randint(1, 5)}T{rng.randint(7, 19):02d}:{rng.randint(0, 59):02d}"
            out.messages.append((class_id, audience, sender, subject, body.format(time=time, sender=sender), sent_at))
    return out


def password_salts(count: int, cost: int) -> list[bytes]:
    """A fresh random bcrypt salt of the given cost per account: what an account holds until its first login
    hashes its password (security.verify_password). 16 random bytes each, so no two accounts share one."""
    return [bcrypt.gensalt(rounds=cost) for _ in range(count)]


DEFAULT_CACHE_DIR = Path(".cache")


def is_cached(path: Path, seed: int, size: int, hash_cost: int, readonly: bool = True) -> bool:
    """True if `path` is a complete database of (seed, size, hash_cost) in the current schema."""
    meta = db.read_meta(path, readonly)
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


def prepare_database(
    path: Path, cache_dir: Path, seed: int, size: int, hash_cost: int, log: Callable[[str], None] = _stderr
) -> None:
    """Make `path` the server's own database: kept as it is if it already is one for (seed, size, hash_cost)
    (its homework, submissions and sessions survive a restart), else a fresh copy of the cached seed."""
    path = Path(path)
    cache = cache_path(cache_dir, seed, size, hash_cost)
    if cache.resolve() == path.resolve():
        raise ValueError(f"--db {path} is the seed cache itself; give the server a file of its own")
    if is_cached(path, seed, size, hash_cost, readonly=False):
        log(f"resuming database {path} (data of earlier runs on it kept)")
        return
    ensure_database(cache, seed, size, hash_cost, log)
    db.copy_database(cache, path)
    log(f"copied the seeded database to {path}")


def build_database(path: Path, seed: int, size: int, hash_cost: int, log: Callable[[str], None]) -> None:
    """Build into a temporary file beside `path`, then rename: an interrupted build leaves nothing behind."""
    started = time.perf_counter()
    rows = plan(seed, size)
    log(
        f"seeding {path}: {len(rows.accounts)} accounts, {len(rows.classes)} classes, bcrypt cost {hash_cost}"
        " (each password is hashed at its account's first login)"
    )
    salts = password_salts(len(rows.accounts), hash_cost)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            _write(conn, rows, salts, seed, size, hash_cost)
        finally:
            conn.close()
        # WAL and shared-memory files of an older database would be replayed into the new one.
        db.remove_database(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log(f"seeded {path} in {time.perf_counter() - started:.1f}s")


def _write(conn: sqlite3.Connection, rows: Plan, salts: list[bytes], seed: int, size: int, hash_cost: int) -> None:
    # A scratch file: no journal needed, it is thrown away if anything fails.
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    db.create_schema(conn)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO schools (id, name, kind) VALUES (?, ?, ?)", rows.schools)
    conn.executemany("INSERT INTO classes (id, school_id, name, level) VALUES (?, ?, ?, ?)", rows.classes)
    conn.executemany(
        "INSERT INTO accounts (username, role, idx, display_name, password_hash, class_id) VALUES (?, ?, ?, ?, ?, ?)",
        [(u, role, idx, name, s, c) for (u, _, role, idx, name, c), s in zip(rows.accounts, salts, strict=True)],
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
    conn.executemany(
        "INSERT INTO messages (class_id, audience, sender, subject, body, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
        rows.messages,
    )
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
