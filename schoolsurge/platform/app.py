"""The reference school platform: a CAS-like SSO, an ENT JSON API and Prometheus metrics, in one ASGI app.

Endpoints are plain `def` functions: FastAPI runs them in its thread pool, so bcrypt (which releases the GIL)
and SQLite calls never block the event loop. All state lives in SQLite so that several server processes
can later share it.
"""

from __future__ import annotations

import hashlib
import html
import random
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape as xml_escape

import bcrypt
from fastapi import Cookie, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schoolsurge.platform import db

SESSION_COOKIE = "ent_session"
CALLBACK_PATH = "/ent/auth/callback"
BAD_CREDENTIALS = "invalid username or password"
CAS_NS = "http://www.yale.edu/tp/cas"


@dataclass(frozen=True)
class Settings:
    login_flow_ttl: float = 300.0  # an execution token (login form) is valid 5 minutes
    ticket_ttl: float = 30.0  # a service ticket is valid 30 seconds
    session_idle: float = 3600.0  # ENT sessions expire after 1 hour idle (FACTS.md)
    # Sliding expiry is refreshed at most this often, so reads do not each cost a write.
    session_touch_interval: float = 60.0
    purge_probability: float = 0.01  # share of login forms that also purge expired rows


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    idx: int
    display_name: str
    class_id: int | None


class NewVirtualClass(BaseModel):
    class_id: int
    title: str = Field(min_length=1, max_length=200)


class Metrics:
    """Prometheus metrics on a registry of their own, so several apps in one process never collide."""

    def __init__(self, active_sessions: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.logins = Counter(
            "schoolsurge_logins", "CAS login attempts by outcome", ["outcome"], registry=self.registry
        )
        for outcome in ("success", "failure"):
            self.logins.labels(outcome)
        self.vc_created = Counter(
            "schoolsurge_virtual_classes_created", "Virtual classes opened", registry=self.registry
        )
        self.vc_joins = Counter("schoolsurge_virtual_class_joins", "Virtual class joins", registry=self.registry)
        self.requests = Counter(
            "schoolsurge_http_requests", "HTTP requests by route template", ["route", "status"], registry=self.registry
        )
        self.active_sessions = Gauge("schoolsurge_active_sessions", "Sessions not yet expired", registry=self.registry)
        self.active_sessions.set_function(active_sessions)


class RequestMetrics:
    """Pure ASGI middleware counting requests by route template (never a raw id) and status code."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            # The router stores the matched route in the (shared) scope; unmatched paths share one label.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.counter.labels(route, str(status)).inc()


def _token() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits


def _token_hash(token: str) -> str:
    # Only a hash is stored, so a copy of the database does not hand out live sessions.
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_service(url: str) -> str:
    """Canonical service URL: lower-case scheme and host, no default port, no fragment."""
    parts = urlsplit(url)
    scheme, netloc = parts.scheme.lower(), parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _check_password(password: str, hashed: bytes) -> bool:
    secret = password.encode()
    if len(secret) > 72:  # bcrypt 5 raises on longer secrets; none of ours is that long
        return False
    try:
        return bcrypt.checkpw(secret, hashed)
    except ValueError:
        return False


def _cas_response(body: str) -> Response:
    xml = f'<cas:serviceResponse xmlns:cas="{CAS_NS}">{body}</cas:serviceResponse>\n'
    return Response(xml, media_type="application/xml")


LOGIN_FORM = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Connexion ENT</title></head>
<body><h1>Connexion</h1>
<form method="post" action="/cas/login">
<input type="text" name="username" autocomplete="username">
<input type="password" name="password" autocomplete="current-password">
<input type="hidden" name="execution" value="{execution}">
<input type="hidden" name="service" value="{service}">
<button type="submit">Se connecter</button>
</form></body></html>
"""


def create_app(db_path: Path, settings: Settings | None = None) -> FastAPI:
    """Build the platform on an already seeded database file."""
    cfg = settings or Settings()
    database = db.Database(db_path)
    meta = db.read_meta(Path(db_path))
    if meta.get("complete") != "1":
        raise ValueError(f"{db_path} is not a complete platform database; seed it first")
    # Unknown users are checked against this hash so they cost (and take) as long as a wrong password.
    dummy_hash = bcrypt.hashpw(b"no such account", bcrypt.gensalt(rounds=int(meta["hash_cost"])))

    def count_active_sessions() -> float:
        since = time.time() - cfg.session_idle
        return database.conn().execute("SELECT COUNT(*) FROM sessions WHERE last_seen > ?", (since,)).fetchone()[0]

    metrics = Metrics(count_active_sessions)
    app = FastAPI(title="schoolsurge reference platform", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestMetrics, counter=metrics.requests)
    app.state.metrics = metrics
    app.state.database = database

    @app.exception_handler(sqlite3.OperationalError)
    def database_busy(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        # Lock waits past busy_timeout are overload, not bugs: answer like an overloaded server would.
        if "locked" in str(exc) or "busy" in str(exc):
            return JSONResponse({"detail": "database busy"}, status_code=503, headers={"Retry-After": "1"})
        raise exc

    def conn() -> sqlite3.Connection:
        return database.conn()

    # ---- accounts and sessions -------------------------------------------------------------------------

    def account_by_id(account_id: int) -> Account | None:
        sql = "SELECT id, username, role, idx, display_name, class_id FROM accounts WHERE id = ?"
        row = conn().execute(sql, (account_id,)).fetchone()
        return Account(*row) if row else None

    def current_account(token: str | None) -> Account:
        if not token:
            raise HTTPException(401, "not logged in")
        key, now = _token_hash(token), time.time()
        row = (
            conn()
            .execute(
                "SELECT s.last_seen, a.id, a.username, a.role, a.idx, a.display_name, a.class_id"
                " FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?",
                (key,),
            )
            .fetchone()
        )
        if row is None or now - row[0] > cfg.session_idle:
            raise HTTPException(401, "session missing or expired")
        if now - row[0] > cfg.session_touch_interval:
            conn().execute("UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, key))
        return Account(*tuple(row)[1:])

    def class_ids_of(account: Account) -> list[int]:
        if account.role == "student":
            return [account.class_id] if account.class_id is not None else []
        if account.role == "teacher":
            sql = "SELECT class_id FROM teacher_classes WHERE teacher_id = ? ORDER BY class_id"
        else:
            sql = (
                "SELECT DISTINCT a.class_id FROM parent_children pc JOIN accounts a ON a.id = pc.child_id"
                " WHERE pc.parent_id = ? ORDER BY a.class_id"
            )
        return [r[0] for r in conn().execute(sql, (account.id,))]

    def scoped_class_ids(account: Account, child: int | None) -> list[int]:
        """Classes whose timetable/homework the account may read; parents must name one of their children."""
        if account.role != "parent":
            return class_ids_of(account)
        if child is None:
            raise HTTPException(400, "parents must choose a child: ?child=ID")
        row = (
            conn()
            .execute(
                "SELECT a.class_id FROM parent_children pc JOIN accounts a ON a.id = pc.child_id"
                " WHERE pc.parent_id = ? AND a.role = 'student' AND a.idx = ?",
                (account.id, child),
            )
            .fetchone()
        )
        if row is None:
            raise HTTPException(403, "not your child")
        return [row[0]]

    def in_list(ids: list[int]) -> str:
        return ",".join("?" * len(ids))

    # ---- CAS single sign-on ----------------------------------------------------------------------------

    def purge_expired(now: float) -> None:
        c = conn()
        c.execute("DELETE FROM login_flows WHERE created_at < ?", (now - cfg.login_flow_ttl,))
        c.execute("DELETE FROM tickets WHERE created_at < ?", (now - cfg.ticket_ttl,))
        c.execute("DELETE FROM sessions WHERE last_seen < ?", (now - cfg.session_idle,))

    def validate_ticket(ticket: str, service: str) -> tuple[Account | None, str]:
        """Consume a service ticket; (account, "") on success, else (None, CAS failure code)."""
        if not ticket or not service:
            return None, "INVALID_REQUEST"
        # fetchall() finishes the statement so the delete commits now: a ticket can be redeemed only once.
        rows = (
            conn()
            .execute("DELETE FROM tickets WHERE ticket = ? RETURNING account_id, service, created_at", (ticket,))
            .fetchall()
        )
        if not rows or time.time() - rows[0][2] > cfg.ticket_ttl:
            return None, "INVALID_TICKET"
        if rows[0][1] != normalize_service(service):
            return None, "INVALID_SERVICE"
        return account_by_id(rows[0][0]), ""

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/cas/login", response_class=HTMLResponse)
    def login_form(service: str | None = None) -> HTMLResponse:
        if not service:
            raise HTTPException(400, "missing service parameter")
        execution, now = _token(), time.time()
        if random.random() < cfg.purge_probability:
            purge_expired(now)
        conn().execute("INSERT INTO login_flows (token, created_at) VALUES (?, ?)", (execution, now))
        page = LOGIN_FORM.format(execution=execution, service=html.escape(service, quote=True))
        return HTMLResponse(page)

    @app.post("/cas/login")
    def login(
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        execution: Annotated[str, Form()],
        service: Annotated[str, Form()],
    ) -> Response:
        now = time.time()
        # The cheap single-use check comes before bcrypt, so replayed forms cost no hashing.
        flow = conn().execute("DELETE FROM login_flows WHERE token = ? RETURNING created_at", (execution,)).fetchall()
        if not flow or now - flow[0][0] > cfg.login_flow_ttl:
            raise HTTPException(400, "unknown, used or expired execution token")
        if urlsplit(service).scheme.lower() not in ("http", "https"):
            raise HTTPException(400, "service must be an http(s) URL")
        row = conn().execute("SELECT id, password_hash FROM accounts WHERE username = ?", (username,)).fetchone()
        valid = _check_password(password, row[1] if row else dummy_hash)
        if row is None or not valid:
            metrics.logins.labels("failure").inc()
            raise HTTPException(401, BAD_CREDENTIALS)
        ticket = f"ST-{_token()}"
        conn().execute(
            "INSERT INTO tickets (ticket, account_id, service, created_at) VALUES (?, ?, ?, ?)",
            (ticket, row[0], normalize_service(service), now),
        )
        metrics.logins.labels("success").inc()
        separator = "&" if "?" in service else "?"
        return RedirectResponse(f"{service}{separator}ticket={ticket}", status_code=302)

    @app.get("/cas/serviceValidate")
    def service_validate(service: str = "", ticket: str = "") -> Response:
        account, code = validate_ticket(ticket, service)
        if account is None:
            message = {"INVALID_REQUEST": "service and ticket are required"}.get(
                code, f"ticket {ticket} not recognized"
            )
            return _cas_response(
                f'<cas:authenticationFailure code="{code}">{xml_escape(message)}</cas:authenticationFailure>'
            )
        return _cas_response(
            f"<cas:authenticationSuccess><cas:user>{xml_escape(account.username)}</cas:user>"
            "</cas:authenticationSuccess>"
        )

    @app.post("/cas/logout")
    def logout(response: Response, ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, str]:
        if ent_session:
            conn().execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(ent_session),))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return {"status": "logged out"}

    # ---- ENT ------------------------------------------------------------------------------------------

    @app.get(CALLBACK_PATH)
    def auth_callback(request: Request, response: Response, ticket: str = "") -> dict[str, str]:
        # The ENT validates the ticket over the CAS back channel; here that is an in-process call.
        service = f"{str(request.base_url).rstrip('/')}{CALLBACK_PATH}"
        account, code = validate_ticket(ticket, service)
        if account is None:
            raise HTTPException(401, f"ticket rejected: {code}")
        token, now = secrets.token_urlsafe(32), time.time()
        conn().execute(
            "INSERT INTO sessions (token_hash, account_id, created_at, last_seen) VALUES (?, ?, ?, ?)",
            (_token_hash(token), account.id, now, now),
        )
        response.set_cookie(SESSION_COOKIE, token, path="/", httponly=True, samesite="lax")
        return {"username": account.username, "role": account.role, "display_name": account.display_name}

    @app.get("/api/dashboard")
    def dashboard(ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, Any]:
        account = current_account(ent_session)
        c = conn()
        children = []
        if account.role == "parent":
            children = [
                {"id": r[0], "name": r[1], "class_id": r[2]}
                for r in c.execute(
                    "SELECT a.idx, a.display_name, a.class_id FROM parent_children pc"
                    " JOIN accounts a ON a.id = pc.child_id WHERE pc.parent_id = ? ORDER BY a.idx",
                    (account.id,),
                )
            ]
        ids = class_ids_of(account)
        classes = [
            {"id": r[0], "name": r[1]}
            for r in c.execute(f"SELECT id, name FROM classes WHERE id IN ({in_list(ids)}) ORDER BY id", ids)
        ]
        open_vcs = [
            {"id": r[0], "class_id": r[1], "title": r[2], "status": r[3]}
            for r in c.execute(
                f"SELECT id, class_id, title, status FROM virtual_classes"
                f" WHERE class_id IN ({in_list(ids)}) AND status != 'closed' ORDER BY id",
                ids,
            )
        ]
        return {
            "username": account.username,
            "role": account.role,
            "display_name": account.display_name,
            "children": children,
            "classes": classes,
            "open_virtual_classes": open_vcs,
        }

    @app.get("/api/timetable")
    def timetable(child: int | None = None, ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, Any]:
        ids = scoped_class_ids(current_account(ent_session), child)
        rows = conn().execute(
            f'SELECT day, start, "end", subject, class_id FROM lessons WHERE class_id IN ({in_list(ids)})'
            " ORDER BY day, start, class_id",
            ids,
        )
        return {
            "lessons": [{"day": d, "start": s, "end": e, "subject": sub, "class_id": c} for d, s, e, sub, c in rows]
        }

    @app.get("/api/homework")
    def homework(child: int | None = None, ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, Any]:
        ids = scoped_class_ids(current_account(ent_session), child)
        rows = conn().execute(
            f"SELECT id, class_id, subject, due, text FROM homework WHERE class_id IN ({in_list(ids)})"
            " ORDER BY due, id",
            ids,
        )
        keys = ("id", "class_id", "subject", "due", "text")
        return {"homework": [dict(zip(keys, r, strict=True)) for r in rows]}

    # ---- virtual classes ------------------------------------------------------------------------------

    def load_virtual_class(vc_id: int, account: Account) -> sqlite3.Row:
        """The virtual class, if it exists (404) and the account is its teacher or a pupil of its class (403)."""
        vc = (
            conn()
            .execute("SELECT id, class_id, teacher_id, status FROM virtual_classes WHERE id = ?", (vc_id,))
            .fetchone()
        )
        if vc is None:
            raise HTTPException(404, "no such virtual class")
        is_pupil = account.role == "student" and account.class_id == vc["class_id"]
        if account.id != vc["teacher_id"] and not is_pupil:
            raise HTTPException(403, "not a member of this class")
        return vc

    @app.post("/api/virtual-classes", status_code=201)
    def create_virtual_class(
        body: NewVirtualClass, ent_session: Annotated[str | None, Cookie()] = None
    ) -> dict[str, Any]:
        account = current_account(ent_session)
        if account.role != "teacher":
            raise HTTPException(403, "only teachers open virtual classes")
        if body.class_id not in class_ids_of(account):
            raise HTTPException(403, "you do not teach this class")
        vc_id = (
            conn()
            .execute(
                "INSERT INTO virtual_classes (class_id, teacher_id, title, status, created_at)"
                " VALUES (?, ?, ?, 'open', ?) RETURNING id",
                (body.class_id, account.id, body.title, time.time()),
            )
            .fetchall()[0][0]
        )
        metrics.vc_created.inc()
        return {
            "id": vc_id,
            "class_id": body.class_id,
            "title": body.title,
            "status": "open",
            "join_url": f"/api/virtual-classes/{vc_id}/join",
        }

    @app.post("/api/virtual-classes/{id}/join")
    def join_virtual_class(id: int, ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, Any]:
        account = current_account(ent_session)
        vc = load_virtual_class(id, account)
        if account.role != "student":
            raise HTTPException(403, "only pupils of the class join it")
        if vc["status"] == "closed":
            raise HTTPException(409, "virtual class is closed")
        c, now = conn(), time.time()
        c.execute(
            "INSERT INTO vc_participants (vc_id, account_id, joined_at, last_seen) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (vc_id, account_id) DO UPDATE SET left_at = NULL, last_seen = excluded.last_seen",
            (id, account.id, now, now),
        )
        metrics.vc_joins.inc()
        n = c.execute("SELECT COUNT(*) FROM vc_participants WHERE vc_id = ? AND left_at IS NULL", (id,)).fetchone()
        return {"status": "joined", "participants": n[0]}

    @app.post("/api/virtual-classes/{id}/heartbeat")
    def heartbeat(id: int, ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, str]:
        account = current_account(ent_session)
        vc = load_virtual_class(id, account)
        if vc["status"] == "closed":
            raise HTTPException(409, "virtual class is closed")
        if account.id != vc["teacher_id"]:
            updated = (
                conn()
                .execute(
                    "UPDATE vc_participants SET last_seen = ? WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
                    (time.time(), id, account.id),
                )
                .rowcount
            )
            if not updated:
                raise HTTPException(403, "join the virtual class first")
        return {"status": "ok"}

    @app.post("/api/virtual-classes/{id}/leave")
    def leave(id: int, ent_session: Annotated[str | None, Cookie()] = None) -> dict[str, str]:
        account = current_account(ent_session)
        vc = load_virtual_class(id, account)
        c, now = conn(), time.time()
        if account.id == vc["teacher_id"]:
            # The teacher leaving ends the lesson: the class closes and everyone still in it leaves.
            with db.transaction(c):
                c.execute("UPDATE virtual_classes SET status = 'closed' WHERE id = ?", (id,))
                c.execute("UPDATE vc_participants SET left_at = ? WHERE vc_id = ? AND left_at IS NULL", (now, id))
        else:
            c.execute(
                "UPDATE vc_participants SET left_at = ? WHERE vc_id = ? AND account_id = ? AND left_at IS NULL",
                (now, id, account.id),
            )
        return {"status": "left"}

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
