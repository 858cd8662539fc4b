"""SQLite schema and connection helpers of the reference platform.

The platform keeps everything in one SQLite file, including login state (execution tokens, service tickets,
sessions), so that several server processes can later share it. WAL lets readers run beside the one writer;
busy_timeout makes a writer wait for the lock instead of failing at once under load.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 5_000

# Static data written once by the seeder. Ids of classes are the roster's class indices and a pupil's
# `idx` is its roster index, so the load generator can name them without asking the platform.
STATIC_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE schools (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL);
CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    name TEXT NOT NULL
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
CREATE INDEX lessons_class ON lessons(class_id);
CREATE TABLE homework (
    id INTEGER PRIMARY KEY,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    subject TEXT NOT NULL,
    due TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX homework_class ON homework(class_id);
"""

# State created while the platform runs; emptied by reset_runtime() when a server starts on a cached file.
RUNTIME_SCHEMA = """
CREATE TABLE login_flows (token TEXT PRIMARY KEY, created_at REAL NOT NULL);
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
    last_seen REAL NOT NULL
);
CREATE INDEX sessions_last_seen ON sessions(last_seen);
CREATE TABLE virtual_classes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    teacher_id INTEGER NOT NULL REFERENCES accounts(id),
    title TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    created_at REAL NOT NULL
);
CREATE INDEX virtual_classes_class ON virtual_classes(class_id, status);
CREATE TABLE vc_participants (
    vc_id INTEGER NOT NULL REFERENCES virtual_classes(id),
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    joined_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    left_at REAL,
    PRIMARY KEY (vc_id, account_id)
);
"""

RUNTIME_TABLES = ("vc_participants", "virtual_classes", "sessions", "tickets", "login_flows")


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection tuned for the platform: autocommit, WAL, busy timeout, foreign keys."""
    # isolation_level=None: statements autocommit; multi-statement writes use explicit BEGIN IMMEDIATE.
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL is durable enough in WAL mode (only the last commits can be lost on power failure).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Database:
    """One SQLite connection per thread: sqlite3 connections must not be shared between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
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


def create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(STATIC_SCHEMA + RUNTIME_SCHEMA)


def read_meta(path: Path) -> dict[str, str]:
    """The meta table of a database file, or {} if the file is missing or not a platform database."""
    if not path.exists():
        return {}
    try:
        # Read-only URI: inspecting a cache candidate must never create or change it.
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return {}


def reset_runtime(path: Path) -> None:
    """Forget sessions, tickets and virtual classes left by an earlier run on the same cached file."""
    conn = connect(path)
    try:
        with transaction(conn):
            for table in RUNTIME_TABLES:
                conn.execute(f"DELETE FROM {table}")
            # Restart virtual class ids at 1, as on a fresh database.
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'virtual_classes'")
    finally:
        conn.close()
