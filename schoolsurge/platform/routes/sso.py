"""Single sign-on modelled on CAS 2.0, and the ENT's side of it (ticket callback, session cookie).

Login form with a one-time execution token -> credentials checked against bcrypt -> 302 to the service with
a one-time service ticket -> the ENT redeems the ticket (callback, or /cas/serviceValidate for other services)
and sets an HttpOnly session cookie. Repeated wrong passwords lock an account for a while (429).
"""

from __future__ import annotations

import html
import math
import random
import time
from typing import Annotated
from xml.sax.saxutils import escape as xml_escape

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from schoolsurge.platform.core import Account, Platform
from schoolsurge.platform.routes.common import SESSION_COOKIE
from schoolsurge.platform.schemas import Me, Status
from schoolsurge.platform.security import check_password, normalize_service, session_token, token, token_hash

CALLBACK_PATH = "/ent/auth/callback"
BAD_CREDENTIALS = "invalid username or password"
CAS_NS = "http://www.yale.edu/tp/cas"
MAX_URL = 2048
SERVICE_URL = r"^[hH][tT][tT][pP][sS]?://"  # CAS redirects only to web services

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
HTML = {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "the login form"}
XML = {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "CAS 2.0 serviceResponse"}


def _cas_response(body: str) -> Response:
    xml = f'<cas:serviceResponse xmlns:cas="{CAS_NS}">{body}</cas:serviceResponse>\n'
    return Response(xml, media_type="application/xml")


def router(p: Platform) -> APIRouter:
    api = APIRouter(tags=["single sign-on"])
    cfg = p.settings

    def purge_expired(now: float) -> None:
        c = p.conn()
        c.execute("DELETE FROM login_flows WHERE created_at < ?", (now - cfg.login_flow_ttl,))
        c.execute("DELETE FROM tickets WHERE created_at < ?", (now - cfg.ticket_ttl,))
        c.execute("DELETE FROM sessions WHERE last_seen < ?", (now - cfg.session_idle,))
        c.execute("DELETE FROM login_failures WHERE at < ?", (now - cfg.throttle_window,))

    def validate_ticket(ticket: str, service: str) -> tuple[Account | None, str]:
        """Consume a service ticket; (account, "") on success, else (None, CAS failure code)."""
        if not ticket or not service:
            return None, "INVALID_REQUEST"
        # fetchall() finishes the statement so the delete commits now: a ticket can be redeemed only once.
        rows = (
            p.conn()
            .execute("DELETE FROM tickets WHERE ticket = ? RETURNING account_id, service, created_at", (ticket,))
            .fetchall()
        )
        if not rows or time.time() - rows[0][2] > cfg.ticket_ttl:
            return None, "INVALID_TICKET"
        if rows[0][1] != normalize_service(service):
            return None, "INVALID_SERVICE"
        return p.account_by_id(rows[0][0]), ""

    def throttle(username: str, now: float) -> int:
        """Failed logins of this account in the window; 429 once they reach the limit."""
        count, oldest = (
            p.conn()
            .execute(
                "SELECT COUNT(*), MIN(at) FROM login_failures WHERE username = ? AND at > ?",
                (username, now - cfg.throttle_window),
            )
            .fetchone()
        )
        if count >= cfg.throttle_failures:
            p.metrics.logins.labels("throttled").inc()
            wait = max(1, math.ceil(oldest + cfg.throttle_window - now))
            raise HTTPException(
                429, f"too many failed logins for this account; retry in {wait} s", headers={"Retry-After": str(wait)}
            )
        return count

    @api.get(
        "/cas/login",
        responses={200: HTML},
        summary="Login form (HTML) carrying a one-time execution token",
    )
    def login_form(
        service: Annotated[str, Query(max_length=MAX_URL, pattern=SERVICE_URL, description="where to go back")],
    ) -> HTMLResponse:
        execution, now = token(), time.time()
        if random.random() < cfg.purge_probability:
            purge_expired(now)
        p.conn().execute("INSERT INTO login_flows (token, created_at) VALUES (?, ?)", (execution, now))
        return HTMLResponse(LOGIN_FORM.format(execution=execution, service=html.escape(service, quote=True)))

    @api.post(
        "/cas/login",
        status_code=302,
        response_class=RedirectResponse,
        summary="Check credentials; 302 to the service with a one-time ticket",
        responses={302: {"description": "redirect to SERVICE?ticket=ST-..."}},
    )
    def login(
        username: Annotated[str, Form(min_length=1, max_length=256)],
        password: Annotated[str, Form(min_length=1, max_length=1024)],
        execution: Annotated[str, Form(min_length=1, max_length=256)],
        service: Annotated[str, Form(max_length=MAX_URL, pattern=SERVICE_URL)],
    ) -> RedirectResponse:
        now = time.time()
        # The cheap single-use check comes before bcrypt, so replayed forms cost no hashing.
        flow = p.conn().execute("DELETE FROM login_flows WHERE token = ? RETURNING created_at", (execution,)).fetchall()
        if not flow or now - flow[0][0] > cfg.login_flow_ttl:
            raise HTTPException(401, "login form unknown, already used or expired; reload it and log in again")
        failures = throttle(username, now)
        row = p.conn().execute("SELECT id, password_hash FROM accounts WHERE username = ?", (username,)).fetchone()
        with p.metrics.hashing.time():
            valid = check_password(password, row[1] if row else p.dummy_hash)
        if row is None or not valid:
            p.conn().execute("INSERT INTO login_failures (username, at) VALUES (?, ?)", (username, now))
            p.metrics.logins.labels("failure").inc()
            raise HTTPException(401, BAD_CREDENTIALS)
        if failures:
            p.conn().execute("DELETE FROM login_failures WHERE username = ?", (username,))
        ticket = f"ST-{token()}"
        p.conn().execute(
            "INSERT INTO tickets (ticket, account_id, service, created_at) VALUES (?, ?, ?, ?)",
            (ticket, row[0], normalize_service(service), now),
        )
        p.metrics.logins.labels("success").inc()
        separator = "&" if "?" in service else "?"
        return RedirectResponse(f"{service}{separator}ticket={ticket}", status_code=302)

    @api.get(
        "/cas/serviceValidate",
        response_class=Response,
        responses={200: XML},
        summary="CAS 2.0 back channel: redeem a service ticket once",
    )
    def service_validate(
        service: Annotated[str, Query(max_length=MAX_URL)] = "", ticket: Annotated[str, Query(max_length=256)] = ""
    ) -> Response:
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

    @api.post("/cas/logout", summary="End the session, if any (needs no authentication)")
    def logout(request: Request, response: Response) -> Status:
        # Read by hand, not declared: logging out is allowed without (or with an expired) session.
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            p.conn().execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash(cookie),))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return Status(status="logged out")

    @api.get(CALLBACK_PATH, summary="The ENT redeems its ticket and opens a session (HttpOnly cookie)")
    def auth_callback(request: Request, response: Response, ticket: Annotated[str, Query(max_length=256)] = "") -> Me:
        # The ENT validates the ticket over the CAS back channel; here that is an in-process call.
        service = f"{str(request.base_url).rstrip('/')}{CALLBACK_PATH}"
        account, code = validate_ticket(ticket, service)
        if account is None:
            raise HTTPException(401, f"ticket rejected: {code}; log in again")
        first_child = None
        if account.role == "parent":
            children = p.children_of(account)
            first_child = children[0]["idx"] if children else None
        cookie, now = session_token(), time.time()
        p.conn().execute(
            "INSERT INTO sessions (token_hash, account_id, created_at, last_seen, selected_child)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_hash(cookie), account.id, now, now, first_child),
        )
        response.set_cookie(SESSION_COOKIE, cookie, path="/", httponly=True, samesite="lax")
        return Me(username=account.username, role=account.role, display_name=account.display_name)

    return api
