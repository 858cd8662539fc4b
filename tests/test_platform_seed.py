"""Seeding: a deterministic population in national proportions, cached by (seed, size, hash cost)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from conftest import login

from schoolsurge.accounts import (
    CLASS_SIZE,
    LEVELS,
    NATIONAL_PUPILS,
    PRIMARY_LEVELS,
    SECONDARY_LEVELS,
    Roster,
    apportion,
)
from schoolsurge.platform import db as platform_db
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.seed import ensure_database, prepare_database

# ---- roster ---------------------------------------------------------------------------------------------


def test_levels_follow_the_national_split() -> None:
    roster = Roster(2021, 1270)
    national = sum(NATIONAL_PUPILS.values())
    for level in LEVELS:
        pupils = roster.pupils_of_level(level)
        assert abs(len(pupils) - 1270 * NATIONAL_PUPILS[level] / national) < 1
        assert all(roster.level_of_pupil(p) == level for p in (pupils[0], pupils[-1]))
        for class_id in roster.classes_of_level(level):
            members = roster.pupils_of_class(class_id)
            assert members[0] in pupils and members[-1] in pupils
            assert len(members) <= CLASS_SIZE[level]
            assert all(roster.class_of_pupil(p) == class_id for p in members)
    # Levels tile the pupils, in order, and every pupil has exactly one class.
    assert [p for level in LEVELS for p in roster.pupils_of_level(level)] == list(range(1270))
    assert sum(len(roster.pupils_of_class(c)) for c in range(roster.classes)) == 1270
    assert apportion(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    with pytest.raises(ValueError, match="unknown level 'lycee'"):
        roster.pupils_of_level("lycee")


def test_teachers_and_families_follow_the_national_proportions() -> None:
    roster = Roster(2021, 1270)
    assert roster.teachers == round(1270 * 869_300 / 12_700_000)
    taught = [c for t in range(roster.teachers) for c in roster.classes_of_teacher(t)]
    assert set(taught) == set(range(roster.classes))  # every class has a teacher
    for t in range(roster.primary_classes):  # a primary teacher has one class of their own
        assert roster.classes_of_teacher(t) == [t] and roster.level_of_class(t) in PRIMARY_LEVELS
    secondary = [
        t for t in range(roster.teachers) if roster.level_of_class(roster.main_class_of_teacher(t)) in SECONDARY_LEVELS
    ]
    assert all(len(roster.classes_of_teacher(t)) > 1 for t in secondary)
    assert all(roster.main_class_of_teacher(t) == t for t in range(roster.classes))
    # Families of one to three siblings, about 1.59 pupils per family (docs/facts.md: 8.0M families, 12.7M pupils).
    sizes = [len(f) for f in roster.families]
    assert set(sizes) == {1, 2, 3} and 1.45 < 1270 / len(sizes) < 1.75
    assert sorted(p for f in roster.families for p in f) == list(range(1270))
    for level in LEVELS:
        parents = roster.parents_of_level(level)
        assert parents == tuple(sorted(parents))
        assert all(any(roster.level_of_pupil(c) == level for c in roster.families[p]) for p in parents)
        assert {roster.parent_of_pupil(p) for p in roster.pupils_of_level(level)} == set(parents)


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything but the (salted) password hashes and the build stamp."""
    conn = sqlite3.connect(path)
    try:
        queries = {
            "accounts": "SELECT username, role, idx, display_name, class_id FROM accounts ORDER BY id",
            "schools": "SELECT * FROM schools ORDER BY id",
            "classes": "SELECT * FROM classes ORDER BY id",
            "messages": "SELECT * FROM messages ORDER BY id",
            "teacher_classes": "SELECT a.idx, tc.class_id FROM teacher_classes tc"
            " JOIN accounts a ON a.id = tc.teacher_id ORDER BY 1, 2",
            "parent_children": "SELECT p.idx, c.idx FROM parent_children pc JOIN accounts p ON p.id = pc.parent_id"
            " JOIN accounts c ON c.id = pc.child_id ORDER BY 1, 2",
            "lessons": "SELECT * FROM lessons ORDER BY id",
            "homework": "SELECT * FROM homework ORDER BY id",
        }
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        conn.close()


def test_seeding_is_deterministic_and_matches_the_roster(tmp_path: Path) -> None:
    roster = Roster(7, 80)
    first, second, other = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3", tmp_path / "c.sqlite3"
    logs: list[str] = []
    for path, seed in ((first, 7), (second, 7), (other, 8)):
        assert ensure_database(path, seed, 80, 4, log=logs.append) is True
    assert dump(first) == dump(second)
    assert dump(first)["accounts"] != dump(other)["accounts"]  # another seed, other names

    data = dump(first)
    expected = {
        (role, i): roster.credentials(role, i)[0]
        for role in ("student", "teacher", "parent")
        for i in range(roster.count(role))
    }
    assert {(r, i): u for u, r, i, _, _ in data["accounts"]} == expected
    assert all(name for *_, name, _ in data["accounts"])
    assert {(i, c) for u, r, i, _, c in data["accounts"] if r == "student"} == {
        (p, roster.class_of_pupil(p)) for p in range(roster.pupils)
    }
    assert [(c, level) for c, _, _, level in data["classes"]] == [
        (c, roster.level_of_class(c)) for c in range(roster.classes)
    ]
    assert {m[1] for m in data["messages"]} == set(range(roster.classes))
    assert set(data["parent_children"]) == {(p, c) for p, kids in enumerate(roster.families) for c in kids}
    assert set(data["teacher_classes"]) == {
        (t, c) for t in range(roster.teachers) for c in roster.classes_of_teacher(t)
    }
    # Passwords are bcrypt hashes, at the requested cost, of the roster's passwords.
    conn = sqlite3.connect(first)
    for role in ("student", "teacher", "parent"):
        user, secret = roster.credentials(role, 1)
        (hashed,) = conn.execute("SELECT password_hash FROM accounts WHERE username = ?", (user,)).fetchone()
        assert hashed.startswith(b"$2b$04$") and bcrypt.checkpw(secret.encode(), hashed)
    conn.close()


def test_cache_is_reused_and_rebuilt_only_when_stale(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    logs: list[str] = []
    assert ensure_database(path, 3, 30, 4, log=logs.append) is True
    build_id = platform_db.read_meta(path)["build_id"]
    assert ensure_database(path, 3, 30, 4, log=logs.append) is False
    assert platform_db.read_meta(path)["build_id"] == build_id
    assert not list(tmp_path.glob("*.tmp"))

    # Another cost, or a file not marked complete, is rebuilt.
    assert ensure_database(path, 3, 30, 5, log=logs.append) is True
    assert platform_db.read_meta(path)["hash_cost"] == "5"
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'complete'")
    conn.commit()
    conn.close()
    assert ensure_database(path, 3, 30, 5, log=logs.append) is True


def test_second_start_reuses_the_cached_seed_with_fresh_runtime_state(tmp_path: Path) -> None:
    cache, log = tmp_path / "cache", tmp_path / "platform.log"
    options = {"seed": 5, "size": 30, "hash_cost": 4, "cache_dir": cache, "log_path": log, "startup_timeout": 60}
    with PlatformProcess(**options) as proc:
        login(proc.base_url, Roster(5, 30), "teacher", 0)
    seeded = cache / "platform-5-30-4.sqlite3"
    build_id = platform_db.read_meta(seeded)["build_id"]
    assert "seeding" in log.read_text() and "reusing" not in log.read_text()
    log.write_text("")
    with PlatformProcess(**options) as proc:
        # A fresh copy: sessions of the earlier run are gone, accounts are intact.
        client, me = login(proc.base_url, Roster(5, 30), "student", 0)
        assert me["username"] == "eleve.0000000"
        assert client.get("/metrics").text.count("schoolsurge_active_sessions 1.0") == 1
    assert platform_db.read_meta(seeded)["build_id"] == build_id
    assert "reusing cached database" in log.read_text() and "seeding" not in log.read_text()
    # The cache itself was never served: no session ever reached it.
    conn = sqlite3.connect(seeded)
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone() == (0,)
    conn.close()


def test_prepare_database_copies_the_cache_or_resumes_a_file_of_its_own(tmp_path: Path) -> None:
    logs: list[str] = []
    own = tmp_path / "own.sqlite3"
    prepare_database(own, tmp_path / "cache", 3, 30, 4, logs.append)
    assert logs[-1] == f"copied the seeded database to {own}"
    conn = platform_db.connect(own)
    conn.execute("INSERT INTO login_failures (address, username, at) VALUES ('127.0.0.1', 'x', 1)")
    conn.close()
    prepare_database(own, tmp_path / "cache", 3, 30, 4, logs.append)
    assert logs[-1].startswith(f"resuming database {own}")
    conn = platform_db.connect(own)
    assert conn.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 1  # kept
    conn.close()
    # Another size: the file is replaced by a copy of the right seed.
    prepare_database(own, tmp_path / "cache", 3, 31, 4, logs.append)
    assert platform_db.read_meta(own)["size"] == "31"
    with pytest.raises(ValueError, match="is the seed cache itself"):
        prepare_database(tmp_path / "cache" / "platform-3-30-4.sqlite3", tmp_path / "cache", 3, 30, 4, logs.append)
