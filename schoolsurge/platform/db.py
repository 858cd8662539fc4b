"""SQLite schema and connection helpers of the reference platform.

Everything lives in one SQLite file, login state included (execution tokens, service tickets, sessions,
wrong passwords), so that several worker processes share it. WAL lets readers run beside the one writer; the
busy timeout (the `db_timeout` knob) makes a writer wait for the lock instead of failing at once.

A seeded file is a pristine cache that is never served: each server runs on its own copy (see seed.py).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = "2"

# Static data written once by the seeder. Ids of classes are the roster's class indices and a pupil's
# `idx` is its roster index, so the load generator can name them without asking the platform.
STATIC_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE schools (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    name TEXT NOT NULL,
    level TEXT NOT NULL
);
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('student', 'teacher', 'parent')),
    idx INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    password_hash BLOB NOT NULL,
    class_id INTEGER REFERENCES classes(id),
    UNIQUE (role, idx)
);
CREATE TABLE teacher_classes (
    teacher_id INTEGER NOT NULL REFERENCES accounts(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    PRIMARY KEY (teacher_id, class_id)
);
CREATE TABLE parent_children (
    parent_id INTEGER NOT NULL REFERENCES accounts(id),
    child_id INTEGER NOT NULL REFERENCES accounts(id),
    PRIMARY KEY (parent_id, child_id)
);
CREATE TABLE lessons (
    id INTEGER PRIMARY KEY,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    day TEXT NOT NULL,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    subject TEXT NOT NULL
);
CREATE INDEX lessons_class ON lessons(class_id, day, start);
CREATE TABLE homework (
    id INTEGER PRIMARY KEY,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    subject TEXT NOT NULL,
    due TEXT NOT NULL,
    text TEXT NOT NULL,
    author_id INTEGER REFERENCES accounts(id),
    posted_at REAL
);
CREATE INDEX homework_class ON homework(class_id);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    audience TEXT NOT NULL CHECK (audience IN ('student', 'teacher', 'parent')),
    sender TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at TEXT NOT NULL
);
CREATE INDEX messages_class ON messages(class_id, audience);
"""

# Login state that lives minutes (sso.py): a file of an earlier version gets these tables afresh, not migrated.
# A login form's execution token, bound to the browser it was given to (the hash of its login-flow cookie).
LOGIN_FLOWS_SCHEMA = """
CREATE TABLE login_flows (token TEXT PRIMARY KEY, created_at REAL NOT NULL, browser_hash TEXT NOT NULL);
"""
# Wrong passwords, by client address and username, for the throttle: a row per password check, written before
# the check and removed when the password was right.
LOGIN_FAILURES_SCHEMA = """
CREATE TABLE login_failures (address TEXT NOT NULL, username TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX login_failures_key ON login_failures(username, address, at);
"""
# OpenID Connect (oidc_provider.py, ent_oidc.py). Codes and access tokens are stored by their SHA-256 only. A
# code row stays until it expires once used (`used_at`), so that its reuse is told from an unknown code and
# revokes the tokens issued from it (RFC 6749 section 4.1.2). The ENT's logins in progress keep the state,
# nonce and PKCE verifier it sent the provider, with the hash of the browser's cookie they are bound to.
OIDC_SCHEMA = """
CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT NOT NULL,
    code_challenge_method TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    auth_time REAL NOT NULL,
    created_at REAL NOT NULL,
    used_at REAL
);
CREATE INDEX oidc_codes_nonce ON oidc_codes(client_id, nonce);
CREATE TABLE oidc_tokens (
    token_hash TEXT PRIMARY KEY,
    code_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    account_id INTEGER NOT NULL,
    scope TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_in REAL NOT NULL
);
CREATE INDEX oidc_tokens_code ON oidc_tokens(code_hash);
CREATE TABLE ent_oidc_logins (
    state TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""
# Each table of login state (its schema), and a column that an earlier version's lacks.
LOGIN_STATE_TABLES = {
    "login_flows": (LOGIN_FLOWS_SCHEMA, "browser_hash"),
    "login_failures": (LOGIN_FAILURES_SCHEMA, "address"),
    "oidc_codes": (OIDC_SCHEMA, "used_at"),
}

# State created while the platform runs.
RUNTIME_SCHEMA = """
CREATE TABLE tickets (
    ticket TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    service TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    selected_child INTEGER
);
CREATE INDEX sessions_last_seen ON sessions(last_seen);
CREATE TABLE virtual_classes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    teacher_id INTEGER NOT NULL REFERENCES accounts(id),
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('scheduled', 'open', 'closed')),
    created_at REAL NOT NULL,
    opened_at REAL
);
CREATE INDEX virtual_classes_class ON virtual_classes(class_id, status);
CREATE TABLE vc_participants (
    vc_id INTEGER NOT NULL REFERENCES virtual_classes(id),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    joined_at REAL NOT NULL,
    admitted_at REAL,
    last_seen REAL NOT NULL,
    left_at REAL,
    PRIMARY KEY (vc_id, account_id)
);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    homework_id INTEGER NOT NULL REFERENCES homework(id),
    pupil_id INTEGER NOT NULL REFERENCES accounts(id),
    text TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    UNIQUE (homework_id, pupil_id)
);
"""


class TimedConnection(sqlite3.Connection):
    """A connection that tells `observe` how long each statement took to execute: preparing it, running it to
    its first row (all of it for a write) and waiting for the lock, not reading a SELECT's further rows."""

    observe: Callable[[float], None] | None = None

    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        observe = self.observe
        if observe is None:
            return super().execute(sql, parameters)  # type: ignore[arg-type]
        started = time.perf_counter()
        try:
            return super().execute(sql, parameters)  # type: ignore[arg-type]
        finally:
            observe(time.perf_counter() - started)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:  # type: ignore[override]
        started = time.perf_counter()
        try:
            return super().executescript(sql_script)
        finally:
            if self.observe is not None:
                self.observe(time.perf_counter() - started)


def connect(path: Path, timeout: float = 5.0, observe: Callable[[float], None] | None = None) -> sqlite3.Connection:
    """Open a connection tuned for the platform: autocommit, WAL, busy timeout, foreign keys; `observe` is told
    each statement's execution time (the database-time metric)."""
    # isolation_level=None: statements autocommit; multi-statement writes use explicit BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=True, factory=TimedConnection)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL survives a crash of the process (kill -9); durable_transaction() asks for FULL where an
    # acknowledged write must also survive a power cut.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.observe = observe  # after the set-up: only the platform's own statements are timed
    return conn


class Database:
    """One SQLite connection per thread: sqlite3 connections must not be shared between threads."""

    def __init__(self, path: Path, timeout: float = 5.0, observe: Callable[[float], None] | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.observe = observe  # told each statement's execution time (seconds)
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, self.timeout, self.observe)
        return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error so a pooled thread's connection is never left open."""
    # IMMEDIATE takes the write lock up front, so the transaction cannot fail half-way on a lock upgrade.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def durable_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A transaction whose COMMIT is fsynced (synchronous = FULL) before the caller acknowledges it."""
    conn.execute("PRAGMA synchronous = FULL")
    try:
        with transaction(conn):
            yield conn
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(STATIC_SCHEMA + RUNTIME_SCHEMA + LOGIN_FLOWS_SCHEMA + LOGIN_FAILURES_SCHEMA + OIDC_SCHEMA)


def is_busy(error: sqlite3.OperationalError) -> bool:
    """Did a statement give up waiting for the database lock (past `db_timeout`)? That is overload, not a bug."""
    message = str(error)
    return "locked" in message or "busy" in message


class NotWritable(ValueError):
    """The database, or its folder, cannot be written; the message is one line saying what to do."""


def check_writable(path: Path) -> None:
    """Raise NotWritable unless SQLite can write `path`. SQLite opens a file it may not write read-only without
    a word, and the server would only find out at its first login (a 500), so a write is tried now and rolled
    back. Opening in WAL mode also checks that the -wal and -shm files can be made next to it."""
    try:
        conn = connect(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE writability_probe (x)")
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise NotWritable(
            f"cannot write the database {path} ({error}); make it and its folder writable, or give --db another file"
        ) from None


def upgrade_runtime_schema(conn: sqlite3.Connection) -> None:
    """Bring a file made by an earlier version up to date, keeping its data (no reseed, no lost homework).
    Login forms, wrong passwords and OpenID Connect codes are only minutes of state: an old table is replaced,
    not migrated."""
    for table, (schema, newest_column) in LOGIN_STATE_TABLES.items():
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if newest_column not in columns:
            with transaction(conn):
                for created in re.findall(r"CREATE TABLE (\w+)", schema):
                    conn.execute(f"DROP TABLE IF EXISTS {created}")
                for statement in filter(str.strip, schema.split(";")):
                    conn.execute(statement)


def read_meta(path: Path, readonly: bool = True) -> dict[str, str]:
    """The meta table of a database file, or {} if the file is missing or not a platform database.

    Read-only by default: inspecting a cache candidate must never change it. A server's own file after a
    crash is opened read-write (`readonly=False`) so SQLite can recover its write-ahead log first."""
    if not Path(path).exists():
        return {}
    try:
        mode = "ro" if readonly else "rw"
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode={mode}", uri=True)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return {}


def remove_database(path: Path) -> None:
    """Delete a database file with its WAL and shared-memory files (a stale WAL would be replayed)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def copy_database(source: Path, target: Path) -> None:
    """Copy a (quiescent) database to a new file, atomically: the target is complete or absent."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    remove_database(tmp)
    try:
        src = sqlite3.connect(f"{Path(source).resolve().as_uri()}?mode=ro", uri=True)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()
        remove_database(target)
        os.replace(tmp, target)
    except BaseException:
        remove_database(tmp)
        raise
