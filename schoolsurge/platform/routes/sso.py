"""Single sign-on modelled on CAS 2.0, and the ENT's side of it (ticket callback, session cookie).

Login form with a one-time execution token -> credentials checked against bcrypt -> 302 to the service with
a one-time service ticket -> the ENT redeems the ticket (callback, or /cas/serviceValidate for other services)
and sets an HttpOnly session cookie. Tickets are issued to registered services only (services.py). Repeated
wrong passwords from one address lock that address out of that account for a while (429).
"""

from __future__ import annotations

import html
import math
import random
import time
from typing import Annotated
from xml.sax.saxutils import escape as xml_escape

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from schoolsurge.platform.core import Account, Platform
from schoolsurge.platform.routes.common import SESSION_COOKIE
from schoolsurge.platform.schemas import Error, Me, Status
from schoolsurge.platform.security import check_password, normalize_service, session_token, token, token_hash
from schoolsurge.platform.services import CALLBACK_PATH

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
UNREGISTERED_SERVICE = "this service is not registered with the CAS server, so no ticket is issued for it"
UNREGISTERED_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Service non autorisé</title></head>
<body><h1>Service non autorisé</h1>
<p>Ce service n'est pas enregistré auprès du serveur d'authentification : aucune connexion ne lui est transmise.</p>
<p>This service is not registered with the CAS server, so no ticket is issued for it.</p>
</body></html>
"""
HTML = {"content": {"text/html": {"schema": {"type": "string"}}}, "description": "the login form"}
REFUSED_SERVICE = {
    403: {
        "model": Error,
        "content": {"text/html": {"schema": {"type": "string"}}},
        "description": "the service is not registered: no ticket for it (an HTML page for browsers)",
    }
}
XML = {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "CAS 2.0 serviceResponse"}


def _cas_response(body: str) -> Response:
    xml = f'<cas:serviceResponse xmlns:cas="{CAS_NS}">{body}</cas:serviceResponse>\n'
    return Response(xml, media_type="application/xml")


def _unregistered_service(request: Request) -> Response:
    """403: a page for a browser, JSON for anything else. Never echoes the service (it is attacker-chosen)."""
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(UNREGISTERED_PAGE, status_code=403)
    return JSONResponse({"detail": UNREGISTERED_SERVICE}, status_code=403)


def client_address(request: Request) -> str:
    """The peer's address, as the socket gives it: never a header the client writes (X-Forwarded-For)."""
    return request.client.host if request.client else ""


def router(p: Platform) -> APIRouter:
    api = APIRouter(tags=["single sign-on"])
    cfg = p.settings

    def purge_expired(now: float) -> None:
        c = p.conn()
        c.execute("DELETE FROM login_flows WHERE created_at < ?", (now - cfg.login_flow_ttl,))
        c.execute("DELETE FROM tickets WHERE created_at < ?", (now - cfg.ticket_ttl,))
        c.execute("DELETE FROM sessions WHERE last_seen < ?", (now - cfg.session_idle,))
        c.execute("DELETE FROM login_failures WHERE at < ?", (now - cfg.throttle_window,))

    def consume_ticket(ticket: str) -> tuple[int, str] | None:
        """Redeem a service ticket once: (account id, service it was issued for), or None if unknown/expired."""
        # fetchall() finishes the statement so the delete commits now: a ticket can be redeemed only once.
        rows = (
            p.conn()
            .execute("DELETE FROM tickets WHERE ticket = ? RETURNING account_id, service, created_at", (ticket,))
            .fetchall()
        )
        if not rows or time.time() - rows[0][2] > cfg.ticket_ttl:
            return None
        return rows[0][0], rows[0][1]

    def validate_ticket(ticket: str, service: str) -> tuple[Account | None, str]:
        """CAS validation: consume the ticket; (account, "") if it was issued for this registered service, else
        (None, CAS failure code). A failed validation burns the ticket too, as CAS requires."""
        if not ticket or not service:
            return None, "INVALID_REQUEST"
        redeemed = consume_ticket(ticket)
        if not p.services.is_registered(service):
            return None, "INVALID_SERVICE"
        if redeemed is None:
            return None, "INVALID_TICKET"
        account_id, issued_for = redeemed
        if issued_for != normalize_service(service):
            return None, "INVALID_SERVICE"
        return p.account_by_id(account_id), ""

    def redeem_at_ent(ticket: str) -> tuple[Account | None, str]:
        """Consume a ticket at the ENT's callback: (account, "") if it was issued for one of the ENT's own
        callback URLs, else (None, CAS failure code)."""
        redeemed = consume_ticket(ticket) if ticket else None
        if redeemed is None:
            return None, "INVALID_TICKET"
        if not p.services.is_ent_callback(redeemed[1]):
            return None, "INVALID_SERVICE"
        account = p.account_by_id(redeemed[0])
        return account, "" if account else "INVALID_TICKET"

    def throttle(address: str, username: str, now: float) -> int:
        """Failed logins of this account from this address in the window; 429 once they reach the limit."""
        count, oldest = (
            p.conn()
            .execute(
                "SELECT COUNT(*), MIN(at) FROM login_failures WHERE username = ? AND address = ? AND at > ?",
                (username, address, now - cfg.throttle_window),
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
        responses={200: HTML, **REFUSED_SERVICE},
        summary="Login form (HTML) carrying a one-time execution token, for a registered service",
    )
    def login_form(
        request: Request,
        service: Annotated[str, Query(max_length=MAX_URL, pattern=SERVICE_URL, description="where to go back")],
    ) -> Response:
        if not p.services.is_registered(service):
            return _unregistered_service(request)
        execution, now = token(), time.time()
        if random.random() < cfg.purge_probability:
            purge_expired(now)
        p.conn().execute("INSERT INTO login_flows (token, created_at) VALUES (?, ?)", (execution, now))
        return HTMLResponse(LOGIN_FORM.format(execution=execution, service=html.escape(service, quote=True)))

    @api.post(
        "/cas/login",
        status_code=302,
        response_class=RedirectResponse,
        summary="Check credentials; 302 to the (registered) service with a one-time ticket",
        responses={302: {"description": "redirect to SERVICE?ticket=ST-..."}, **REFUSED_SERVICE},
    )
    def login(
        request: Request,
        username: Annotated[str, Form(min_length=1, max_length=256)],
        password: Annotated[str, Form(min_length=1, max_length=1024)],
        execution: Annotated[str, Form(min_length=1, max_length=256)],
        service: Annotated[str, Form(max_length=MAX_URL, pattern=SERVICE_URL)],
    ) -> Response:
        # Before anything else: an unregistered service gets no ticket, and costs no hashing.
        if not p.services.is_registered(service):
            return _unregistered_service(request)
        now, address = time.time(), client_address(request)
        # The cheap single-use check comes before bcrypt, so replayed forms cost no hashing.
        flow = p.conn().execute("DELETE FROM login_flows WHERE token = ? RETURNING created_at", (execution,)).fetchall()
        if not flow or now - flow[0][0] > cfg.login_flow_ttl:
            raise HTTPException(401, "login form unknown, already used or expired; reload it and log in again")
        failures = throttle(address, username, now)
        row = p.conn().execute("SELECT id, password_hash FROM accounts WHERE username = ?", (username,)).fetchone()
        with p.metrics.hashing.time():
            valid = check_password(password, row[1] if row else p.dummy_hash)
        if row is None or not valid:
            p.conn().execute(
                "INSERT INTO login_failures (address, username, at) VALUES (?, ?, ?)", (address, username, now)
            )
            p.metrics.logins.labels("failure").inc()
            raise HTTPException(401, BAD_CREDENTIALS)
        if failures:
            p.conn().execute("DELETE FROM login_failures WHERE username = ? AND address = ?", (username, address))
        # The canonical registered URL, not the raw input: the redirect goes exactly where registration allows.
        registered = normalize_service(service)
        ticket = f"ST-{token()}"
        p.conn().execute(
            "INSERT INTO tickets (ticket, account_id, service, created_at) VALUES (?, ?, ?, ?)",
            (ticket, row[0], registered, now),
        )
        p.metrics.logins.labels("success").inc()
        separator = "&" if "?" in registered else "?"
        return RedirectResponse(f"{registered}{separator}ticket={ticket}", status_code=302)

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
            message = {
                "INVALID_REQUEST": "service and ticket are required",
                "INVALID_SERVICE": "ticket not issued for this service, or service not registered",
            }.get(code, f"ticket {ticket} not recognized")
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
    def auth_callback(response: Response, ticket: Annotated[str, Query(max_length=256)] = "") -> Me:
        # The ENT validates the ticket over the CAS back channel; here that is an in-process call. Which service
        # the ticket is for comes from the ticket itself and must be one of the ENT's own registered callbacks:
        # never from the Host or X-Forwarded-* headers, which whoever holds a ticket writes as they please.
        account, code = redeem_at_ent(ticket)
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
