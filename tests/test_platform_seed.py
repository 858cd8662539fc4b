"""Seeding: a deterministic population in national proportions, cached by (seed, size, hash cost)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from conftest import Client, Reply, login, login_form, metric_value, post_credentials, ticket_of

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
from schoolsurge.platform import security
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.security import is_pending, verify_password
from schoolsurge.platform.seed import cache_path, ensure_database, prepare_database

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


def stored_hash(path: Path, username: str) -> bytes:
    """An account's password_hash column: its bare salt before its first login, its bcrypt hash after."""
    conn = sqlite3.connect(path)
    try:
        (value,) = conn.execute("SELECT password_hash FROM accounts WHERE username = ?", (username,)).fetchone()
        return bytes(value)
    finally:
        conn.close()


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
    # Passwords are hashed at first login: each account holds a bcrypt salt of the requested cost, its own.
    conn = sqlite3.connect(first)
    salts = [row[0] for row in conn.execute("SELECT password_hash FROM accounts")]
    conn.close()
    assert len(set(salts)) == len(salts) == len(data["accounts"])
    for role in ("student", "teacher", "parent"):
        user, secret = roster.credentials(role, 1)
        salt = stored_hash(first, user)
        assert len(salt) == 29 and salt.startswith(b"$2b$04$") and is_pending(salt)
        hashed = bcrypt.hashpw(secret.encode(), salt)  # what the first login will store
        assert bcrypt.checkpw(secret.encode(), hashed) and not is_pending(hashed)


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


# ---- lazy password hashing ------------------------------------------------------------------------------


def hashes_done(client: Client) -> float:
    """bcrypt computations the platform has done, all workers: one per credential check."""
    return metric_value(client.get("/metrics").text, "schoolsurge_password_hash_seconds_count")


def cas_login(client: Client, username: str, password: str) -> int:
    """POST credentials on a fresh login form; the status (302 right, 401 wrong)."""
    return post_credentials(client, username, password).status


def test_first_login_hashes_the_password_at_full_cost_and_later_logins_check_the_stored_hash(
    tmp_path: Path, platform_cache: Path
) -> None:
    seed, size, cost = 13, 40, 4
    roster, own = Roster(seed, size), tmp_path / "own.sqlite3"
    options = {"seed": seed, "size": size, "hash_cost": cost, "cache_dir": platform_cache}
    with PlatformProcess(**options, profile="resized", db=own, startup_timeout=60) as proc:
        client = Client(proc.base_url)
        username, password = roster.credentials("teacher", 2)
        salt = stored_hash(own, username)
        assert is_pending(salt) and salt.startswith(b"$2b$04$")

        # A wrong password before the first login: refused, one bcrypt computation as for any login, nothing stored.
        before = hashes_done(client)
        assert cas_login(client, username, password[::-1]) == 401
        assert hashes_done(client) == before + 1
        assert stored_hash(own, username) == salt

        # The first right login: accepted, and the account now holds the bcrypt hash of its password, same salt.
        _, me = login(proc.base_url, roster, "teacher", 2)
        assert me["username"] == username
        assert hashes_done(client) == before + 2
        hashed = stored_hash(own, username)
        assert len(hashed) == 60 and hashed.startswith(salt) and hashed.startswith(b"$2b$04$")
        assert bcrypt.checkpw(password.encode(), hashed)

        # Later logins check the stored hash (unchanged), still one bcrypt computation each, right or wrong.
        login(proc.base_url, roster, "teacher", 2)
        assert cas_login(client, username, "0" * len(password)) == 401
        assert hashes_done(client) == before + 4
        assert stored_hash(own, username) == hashed

        # An unknown user costs one computation too; other accounts are untouched.
        assert cas_login(client, "nobody.0000000", password) == 401
        assert hashes_done(client) == before + 5
        assert is_pending(stored_hash(own, roster.credentials("teacher", 3)[0]))
    # The seed cache is never served: it still holds the bare salt.
    assert stored_hash(cache_path(platform_cache, seed, size, cost), username) == salt


def test_verification_does_the_same_bcrypt_work_whatever_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    password = "0123456789abcdef"
    salt = bcrypt.gensalt(rounds=8)
    hashed = bcrypt.hashpw(password.encode(), salt)
    calls: list[str] = []
    real_hashpw, real_checkpw = bcrypt.hashpw, bcrypt.checkpw

    def counting_hashpw(secret: bytes, with_salt: bytes) -> bytes:
        calls.append(f"hashpw {with_salt[:7].decode()}")
        return real_hashpw(secret, with_salt)

    def counting_checkpw(secret: bytes, against: bytes) -> bool:
        calls.append(f"checkpw {against[:7].decode()}")
        return real_checkpw(secret, against)

    monkeypatch.setattr(security.bcrypt, "hashpw", counting_hashpw)
    monkeypatch.setattr(security.bcrypt, "checkpw", counting_checkpw)

    def expected() -> str:
        return password

    cases = {
        "first login, right": (password, salt, (True, hashed)),
        "first login, wrong": ("fedcba9876543210", salt, (False, None)),
        "first login, wrong length": ("x", salt, (False, None)),
        "later login, right": (password, hashed, (True, None)),
        "later login, wrong": ("fedcba9876543210", hashed, (False, None)),
    }
    fastest: dict[str, float] = {}
    for name, (given, stored, outcome) in cases.items():
        calls.clear()
        assert verify_password(given, stored, expected) == outcome, name
        assert len(calls) == 1 and calls[0].endswith("$2b$08$"), (name, calls)  # one hash, at the full cost
        durations = []
        for _ in range(3):
            started = time.perf_counter()
            verify_password(given, stored, expected)
            durations.append(time.perf_counter() - started)
        fastest[name] = min(durations)
    # Wall time only as a sanity check, with a wide margin: skipping bcrypt would be thousands of times faster.
    slowest = max(fastest.values())
    assert all(seconds > slowest / 4 for seconds in fastest.values()), fastest


def post_together(clients: list[Client], username: str, password: str) -> list[Reply]:
    """Each client posts the same credentials on its own login form, all released at once; the replies in order."""
    forms = [login_form(client) for client in clients]
    replies: dict[int, Reply] = {}
    start = threading.Barrier(len(clients))

    def submit(n: int) -> None:
        start.wait()
        replies[n] = post_credentials(clients[n], username, password, forms[n])

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(replies) == list(range(len(clients))), "a login thread failed"
    return [replies[n] for n in range(len(clients))]


def test_concurrent_first_logins_of_one_account_store_one_valid_hash(tmp_path: Path, platform_cache: Path) -> None:
    # Cost 8 (a few ms a hash) so that logins posted together overlap in bcrypt; seeding stays instant.
    seed, size, cost = 17, 40, 8
    roster, own = Roster(seed, size), tmp_path / "own.sqlite3"
    options = {"seed": seed, "size": size, "hash_cost": cost, "cache_dir": platform_cache}
    # Two worker processes on one SQLite file: concurrent logins land on either.
    with PlatformProcess(**options, profile="resized", db=own, startup_timeout=60) as proc:
        for idx in range(4):
            username, password = roster.credentials("parent", idx)
            salt = stored_hash(own, username)
            clients = [Client(proc.base_url) for _ in range(4)]
            replies = post_together(clients, username, password)
            # Every login succeeded, once each: a ticket of its own, which opens a session.
            tickets = [ticket_of(reply) for reply in replies]
            assert len(set(tickets)) == len(clients)
            for client, ticket in zip(clients, tickets, strict=True):
                session = client.get(f"/ent/auth/callback?ticket={ticket}")
                assert session.status == 200 and session.json()["username"] == username
            # The account holds one bcrypt hash of its password, over its seeded salt.
            hashed = stored_hash(own, username)
            assert len(hashed) == 60 and hashed.startswith(salt) and bcrypt.checkpw(password.encode(), hashed)
            _, me = login(proc.base_url, roster, "parent", idx)  # and the stored hash opens the account again
            assert me["username"] == username
