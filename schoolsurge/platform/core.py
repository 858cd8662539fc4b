"""What every route needs: the database, settings, metrics, and who is asking (sessions and authorisation).

Authorisation rules, in one place: a pupil sees their own class, a teacher the classes they teach, a parent
their own children's classes. A request without a valid session gets 401. One naming something the account
may not see (a class, a child, a homework, a virtual class) gets 404, exactly as if it did not exist, so ids
cannot be probed for existence; 403 is kept for refusals that reveal nothing (a role that may never do this).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from fastapi import HTTPException

from schoolsurge import accounts
from schoolsurge.platform import db
from schoolsurge.platform.admission import CapacityState
from schoolsurge.platform.metrics import Metrics
from schoolsurge.platform.security import check_password, session_token, token_hash, verify_password
from schoolsurge.platform.services import ServiceRegistry
from schoolsurge.platform.settings import Settings


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    idx: int
    display_name: str
    class_id: int | None


@dataclass(frozen=True)
class Session:
    account: Account
    key: str  # hash of the cookie
    selected_child: int | None  # parents: roster index of the child shown by default


@dataclass(frozen=True)
class ChildRef:
    account_id: int
    idx: int
    class_id: int


class Platform:
    def __init__(
        self,
        db_path: Path,
        settings: Settings,
        metrics: Metrics,
        capacity: CapacityState,
        admin_token_hash: str | None,
        *,
        services: ServiceRegistry,
        metrics_token_hash: str | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.capacity = capacity
        self.admin_token_hash = admin_token_hash
        self.services = services
        self.metrics_token_hash = metrics_token_hash
        self.database = db.Database(db_path, settings.db_timeout, observe=metrics.db_time.observe)
        meta = db.read_meta(Path(db_path), readonly=False)
        if meta.get("complete") != "1":
            raise ValueError(f"{db_path} is not a complete platform database; seed it first")
        self.hash_cost = int(meta["hash_cost"])
        self.seed = int(meta["seed"])  # seeded passwords derive from it (accounts.password), see check_credentials
        # Unknown users are checked against this hash so they cost (and take) as long as a wrong password.
        self.dummy_hash = bcrypt.hashpw(b"no such account", bcrypt.gensalt(rounds=self.hash_cost))

    # ---- credentials --------------------------------------------------------------------------------

    def check_credentials(self, username: str, password: str) -> int | None:
        """The id of the account these credentials open, or None. Every call does exactly one bcrypt hash at
        the platform's cost (timed in the password-hash metric): an unknown user is checked against a dummy
        hash, a seeded account's first login hashes the password with the account's salt and stores the hash
        if it is right (security.verify_password), and every later login checks that hash."""
        conn = self.connection()
        row = conn.execute("SELECT id, password_hash FROM accounts WHERE username = ?", (username,)).fetchone()
        with self.metrics.hashing.time():
            if row is None:
                check_password(password, self.dummy_hash)
                return None
            stored = bytes(row[1])
            valid, hashed = verify_password(password, stored, lambda: accounts.password(self.seed, username))
        if hashed is not None:
            try:
                # Only over the salt: a worker that stored it first stored the very same hash (same salt).
                conn.execute(
                    "UPDATE accounts SET password_hash = ? WHERE id = ? AND password_hash = ?", (hashed, row[0], stored)
                )
            except sqlite3.OperationalError as error:
                if not db.is_busy(error):
                    raise
                # Not stored this time: the next login hashes again, at the same cost, to the same hash.
        return int(row[0]) if valid else None

    def connection(self) -> sqlite3.Connection:
        """This thread's SQLite connection (autocommit); never hand it to another thread."""
        return self.database.conn()

    # ---- sessions -----------------------------------------------------------------------------------

    def session(self, cookie: str | None) -> Session:
        """The session a cookie stands for, refreshed (sliding expiry); 401 if missing or expired."""
        if not cookie:
            raise HTTPException(401, "not logged in")
        key, now = token_hash(cookie), time.time()
        row = (
            self.connection()
            .execute(
                "SELECT s.last_seen, s.selected_child, a.id, a.username, a.role, a.idx, a.display_name, a.class_id"
                " FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?",
                (key,),
            )
            .fetchone()
        )
        idle = self.settings.run_session_idle  # the scenario's lifetime at the run's speed
        if row is None or now - row[0] > idle:
            raise HTTPException(401, "session missing or expired; log in again")
        # Refreshed at most every touch interval (a write), but often enough for a short session lifetime.
        if now - row[0] > min(self.settings.run_session_touch_interval, idle / 4):
            self.connection().execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, key))
        return Session(Account(*tuple(row)[2:]), key, row[1])

    def account(self, cookie: str | None) -> Account:
        return self.session(cookie).account

    def open_session(self, account: Account) -> str:
        """A new session for the account; returns the cookie value (only its hash is stored). A parent's session
        starts on their first child."""
        first_child = None
        if account.role == "parent":
            children = self.children_of(account)
            first_child = children[0]["idx"] if children else None
        cookie, now = session_token(), time.time()
        self.connection().execute(
            "INSERT INTO sessions (token_hash, account_id, created_at, last_seen, selected_child)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_hash(cookie), account.id, now, now, first_child),
        )
        return cookie

    def live_sessions(self) -> int:
        """Sessions not yet expired (run-level lifetime), all workers."""
        since = time.time() - self.settings.run_session_idle
        return int(
            self.connection().execute("SELECT COUNT(*) FROM sessions WHERE last_seen > ?", (since,)).fetchone()[0]
        )

    def end_session(self, cookie: str | None) -> None:
        """Forget the session a cookie stands for, if any."""
        if cookie:
            self.connection().execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(cookie),))

    def account_by_id(self, account_id: int) -> Account | None:
        sql = "SELECT id, username, role, idx, display_name, class_id FROM accounts WHERE id = ?"
        row = self.connection().execute(sql, (account_id,)).fetchone()
        return Account(*row) if row else None

    def account_by_username(self, username: str) -> Account | None:
        sql = "SELECT id, username, role, idx, display_name, class_id FROM accounts WHERE username = ?"
        row = self.connection().execute(sql, (username,)).fetchone()
        return Account(*row) if row else None

    # ---- authorisation ------------------------------------------------------------------------------

    def class_ids_of(self, account: Account) -> list[int]:
        """Classes the account belongs to: a pupil's own, a teacher's taught ones, a parent's children's."""
        if account.role == "student":
            return [account.class_id] if account.class_id is not None else []
        if account.role == "teacher":
            sql = "SELECT class_id FROM teacher_classes WHERE teacher_id = ? ORDER BY class_id"
        else:
            sql = (
                "SELECT DISTINCT a.class_id FROM parent_children pc JOIN accounts a ON a.id = pc.child_id"
                " WHERE pc.parent_id = ? ORDER BY a.class_id"
            )
        return [r[0] for r in self.connection().execute(sql, (account.id,))]

    def children_of(self, parent: Account) -> list[sqlite3.Row]:
        return (
            self.connection()
            .execute(
                "SELECT a.id AS account_id, a.idx, a.display_name, a.class_id, c.name AS class_name, c.level"
                " FROM parent_children pc JOIN accounts a ON a.id = pc.child_id JOIN classes c ON c.id = a.class_id"
                " WHERE pc.parent_id = ? ORDER BY a.idx",
                (parent.id,),
            )
            .fetchall()
        )

    def child(self, parent: Account, child_idx: int) -> ChildRef:
        """One of the parent's own children by roster index; 404 for anybody else's, as for nobody's."""
        row = (
            self.connection()
            .execute(
                "SELECT a.id, a.idx, a.class_id FROM parent_children pc JOIN accounts a ON a.id = pc.child_id"
                " WHERE pc.parent_id = ? AND a.role = 'student' AND a.idx = ?",
                (parent.id, child_idx),
            )
            .fetchone()
        )
        if row is None:
            raise HTTPException(404, "no such child")
        return ChildRef(*row)

    def reader_scope(self, session: Session, child: int | None) -> tuple[list[int], int | None]:
        """(class ids whose timetable/homework may be read, pupil account whose submissions show)."""
        account = session.account
        if account.role != "parent":
            pupil = account.id if account.role == "student" else None
            return self.class_ids_of(account), pupil
        chosen = child if child is not None else session.selected_child
        if chosen is None:
            raise HTTPException(400, "choose a child first: ?child=ID or POST /api/children/ID/select")
        ref = self.child(account, chosen)
        return [ref.class_id], ref.account_id

    def require_role(self, account: Account, role: str, why: str) -> None:
        if account.role != role:
            raise HTTPException(403, why)

    def require_teacher_of(self, account: Account, class_id: int) -> None:
        """403 for anyone but a teacher; 404 for a class they do not teach, as for one that does not exist."""
        self.require_role(account, "teacher", "only teachers may do this")
        row = (
            self.connection()
            .execute("SELECT 1 FROM teacher_classes WHERE teacher_id = ? AND class_id = ?", (account.id, class_id))
            .fetchone()
        )
        if row is None:
            raise HTTPException(404, "no such class")


def in_list(ids: list[int]) -> str:
    """Placeholders for `IN (...)`; ids are bound as parameters, never formatted into SQL."""
    return ",".join("?" * len(ids))
