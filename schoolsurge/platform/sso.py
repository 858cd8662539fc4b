"""The CAS server's state and rules: login forms (one-time execution tokens, each bound to the browser it was
given to), service tickets and their validation (Apereo CAS Protocol 3.0), and the throttle on wrong
passwords. All of it lives in SQLite, shared by the worker processes. The endpoints are in routes/cas.py and
routes/ent_auth.py, the answers' formats in cas_responses.py, the cookies in cookies.py.

Service tickets are issued only to registered services (services.py), are single-use whatever the outcome of
their validation (CAS 3.0 section 3.1.1) and expire after `ticket_ttl`.

Wrong passwords slow logins down, never lock them (docs/platform.md, "Wrong passwords"): past a few of them
for one account, from one address or from all addresses together, each further attempt must wait after the
latest one, a wait that doubles at each wrong password up to `throttle_max_delay`; before it, 429 with
Retry-After and no check. The right password gets in once the wait is over.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum

from fastapi import HTTPException

from schoolsurge.platform import db
from schoolsurge.platform.core import Account, Platform
from schoolsurge.platform.security import (
    SERVICE_TICKET_PREFIX,
    normalize_service,
    same_secret,
    service_ticket,
    token,
    token_hash,
)
from schoolsurge.platform.settings import Settings
from schoolsurge.rundir.metrics import LoginOutcome

# What a ticket may look like to be quoted back in a failure message (CAS 3.0 section 3.7: letters, digits and
# hyphens). Anything else is not echoed: it could break the XML, and it is the caller's input anyway.
QUOTABLE_TICKET = re.compile(r"[A-Za-z0-9-]{1,256}")


class Failure(StrEnum):
    """Validation failure codes (CAS 3.0 section 2.5.3)."""

    INVALID_REQUEST = "INVALID_REQUEST"  # service or ticket missing, or a `format` this server does not speak
    INVALID_TICKET_SPEC = "INVALID_TICKET_SPEC"  # not a service ticket (e.g. a proxy ticket)
    UNAUTHORIZED_SERVICE_PROXY = "UNAUTHORIZED_SERVICE_PROXY"  # a pgtUrl: no service may proxy here
    INVALID_TICKET = "INVALID_TICKET"  # unknown, already used or expired
    INVALID_SERVICE = "INVALID_SERVICE"  # issued for another service, or the service is not registered
    INTERNAL_ERROR = "INTERNAL_ERROR"  # the ticket store could not answer (database busy)


@dataclass(frozen=True)
class Validation:
    """The outcome of a ticket validation: the account on success, else a failure code and why."""

    account: Account | None = None
    authenticated_at: float = 0.0  # when the credentials were checked (the ticket was issued)
    failure: Failure | None = None
    message: str = ""

    @classmethod
    def failed(cls, failure: Failure, message: str) -> Validation:
        return cls(failure=failure, message=message)


@dataclass(frozen=True)
class RedeemedTicket:
    account_id: int
    service: str  # the registered spelling it was issued for
    issued_at: float


# ---- login forms ----------------------------------------------------------------------------------------


def start_login_flow(platform: Platform, browser: str) -> str:
    """A new login form's one-time execution token, usable only by the browser whose login-flow cookie is
    `browser` (only its hash is stored). Now and then also purges expired rows."""
    execution, now = token(), time.time()
    if random.random() < platform.settings.purge_probability:
        purge_expired(platform, now)
    platform.connection().execute(
        "INSERT INTO login_flows (token, created_at, browser_hash) VALUES (?, ?, ?)",
        (execution, now, token_hash(browser)),
    )
    return execution


def finish_login_flow(platform: Platform, execution: str, browser: str | None, now: float) -> bool:
    """Use up an execution token: True once for a token this server issued less than `login_flow_ttl` ago, to
    the browser sending the login-flow cookie `browser`. A token posted from another browser is used up too."""
    # fetchall() finishes the statement so the delete commits now: a form can be submitted only once.
    flow = (
        platform.connection()
        .execute("DELETE FROM login_flows WHERE token = ? RETURNING created_at, browser_hash", (execution,))
        .fetchall()
    )
    if not flow or browser is None:
        return False
    created_at, browser_hash = flow[0]
    return now - created_at <= platform.settings.login_flow_ttl and same_secret(token_hash(browser), browser_hash)


def purge_expired(platform: Platform, now: float) -> None:
    settings, connection = platform.settings, platform.connection()
    connection.execute("DELETE FROM login_flows WHERE created_at < ?", (now - settings.login_flow_ttl,))
    connection.execute("DELETE FROM tickets WHERE created_at < ?", (now - settings.ticket_ttl,))
    connection.execute("DELETE FROM sessions WHERE last_seen < ?", (now - settings.run_session_idle,))
    connection.execute("DELETE FROM login_failures WHERE at < ?", (now - settings.throttle_window,))
    connection.execute("DELETE FROM oidc_codes WHERE created_at < ?", (now - settings.code_ttl,))
    connection.execute("DELETE FROM oidc_tokens WHERE issued_at + expires_in < ?", (now,))
    connection.execute("DELETE FROM ent_oidc_logins WHERE created_at < ?", (now - settings.login_flow_ttl,))


# ---- wrong passwords ------------------------------------------------------------------------------------


def slow_down_wait(wrong: int, allowed: int, first: float, longest: float) -> float:
    """Seconds an attempt waits after the latest of `wrong` wrong passwords in the window: none while fewer
    than `allowed`, then `first`, doubled at each further one, at most `longest`."""
    if wrong < allowed:
        return 0.0
    return min(first * 2.0 ** min(wrong - allowed, 64), longest)


def check_credentials(platform: Platform, address: str, username: str, password: str) -> int | None:
    """The account's id if the password is right, None if not; 429 with Retry-After, before any hashing, while
    this account must wait (from this address, or from anywhere). Every check counts as a wrong password until
    it proves right; the right one forgives this address's wrong passwords for the account (others' still
    count)."""
    attempt = _claim_check(platform, address, username)
    try:
        # One bcrypt hash whatever the outcome: unknown users and wrong passwords cost (and take) as long as a login.
        account_id = platform.check_credentials(username, password)
    except BaseException:
        # Not checked after all (the database too busy to store a first login's hash: a 503): not a wrong one.
        with contextlib.suppress(sqlite3.Error):
            platform.connection().execute("DELETE FROM login_failures WHERE rowid = ?", (attempt,))
        raise
    if account_id is None:
        platform.metrics.logins.labels(LoginOutcome.FAILURE).inc()
        return None
    platform.connection().execute("DELETE FROM login_failures WHERE username = ? AND address = ?", (username, address))
    platform.metrics.logins.labels(LoginOutcome.SUCCESS).inc()
    return account_id


def _claim_check(platform: Platform, address: str, username: str) -> int:
    """Record a password check about to be made (its rowid), or answer 429 if it must wait. The wrong passwords
    are counted and the check recorded in one write transaction: simultaneous attempts, in any worker, are
    serialised by SQLite's lock, so a burst cannot slip more checks through than the slow-down allows."""
    settings = platform.settings
    with db.transaction(platform.connection()) as connection:
        # The clock is read once the lock is held, so the checks' times follow the order they were let through.
        now = time.time()
        ready_at = max(
            _ready_at(connection, settings, now, settings.account_throttle_failures, "username = ?", username),
            _ready_at(
                connection, settings, now, settings.throttle_failures, "username = ? AND address = ?", username, address
            ),
        )
        if ready_at > now:
            platform.metrics.logins.labels(LoginOutcome.THROTTLED).inc()
            wait = max(1, math.ceil(ready_at - now))
            raise HTTPException(
                429,
                f"too many wrong passwords for this account; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        # fetchall() finishes the statement before the COMMIT.
        rows = connection.execute(
            "INSERT INTO login_failures (address, username, at) VALUES (?, ?, ?) RETURNING rowid",
            (address, username, now),
        ).fetchall()
    return int(rows[0][0])


def _ready_at(
    connection: sqlite3.Connection, settings: Settings, now: float, allowed: int, key: str, *values: str
) -> float:
    """When the next check may be made under one key (the rows `key` selects with `values`): now while it has
    fewer than `allowed` wrong passwords in the window, else once the wait after the latest one is over."""
    since = now - settings.throttle_window
    wrong, latest = connection.execute(
        f"SELECT COUNT(*), MAX(at) FROM login_failures WHERE {key} AND at > ?", (*values, since)
    ).fetchone()
    wait = slow_down_wait(wrong, allowed, settings.throttle_first_delay, settings.throttle_max_delay)
    return latest + wait if wait else now


# ---- service tickets ------------------------------------------------------------------------------------


def issue_service_ticket(platform: Platform, account_id: int, registered_service: str, now: float) -> str:
    ticket = service_ticket()
    platform.connection().execute(
        "INSERT INTO tickets (ticket, account_id, service, created_at) VALUES (?, ?, ?, ?)",
        (ticket, account_id, registered_service, now),
    )
    return ticket


def consume_ticket(platform: Platform, ticket: str) -> RedeemedTicket | None:
    """Redeem a service ticket once: what it was issued for, or None if unknown, already used or expired."""
    # fetchall() finishes the statement so the delete commits now: a ticket can be redeemed only once.
    rows = (
        platform.connection()
        .execute("DELETE FROM tickets WHERE ticket = ? RETURNING account_id, service, created_at", (ticket,))
        .fetchall()
    )
    if not rows or time.time() - rows[0][2] > platform.settings.ticket_ttl:
        return None
    return RedeemedTicket(*rows[0])


def validate_service_ticket(platform: Platform, ticket: str, service: str, proxy_callback: str = "") -> Validation:
    """CAS validation (/validate, /serviceValidate, /p3/serviceValidate): the ticket is used up whatever the
    outcome, once the request names both a service and a service ticket. Succeeds only for a ticket issued for
    this (registered) service. A database too busy to answer is INTERNAL_ERROR, and leaves the ticket unused."""
    if not ticket or not service:
        return Validation.failed(Failure.INVALID_REQUEST, "service and ticket are required")
    if not ticket.startswith(SERVICE_TICKET_PREFIX):
        return Validation.failed(
            Failure.INVALID_TICKET_SPEC,
            "not a service ticket (ST-...): this server issues no proxy tickets, and validates service tickets only",
        )
    try:
        return _redeem_for(platform, ticket, service, proxy_callback)
    except sqlite3.OperationalError as error:
        if not db.is_busy(error):
            raise
        return Validation.failed(Failure.INTERNAL_ERROR, "the ticket store is busy; retry later")


def _redeem_for(platform: Platform, ticket: str, service: str, proxy_callback: str) -> Validation:
    redeemed = consume_ticket(platform, ticket)
    if not platform.services.is_registered(service):
        return Validation.failed(Failure.INVALID_SERVICE, "service not registered with this CAS server")
    if redeemed is None:
        quoted = f"ticket {ticket}" if QUOTABLE_TICKET.fullmatch(ticket) else "ticket"
        return Validation.failed(Failure.INVALID_TICKET, f"{quoted} not recognized")
    if redeemed.service != normalize_service(service):
        return Validation.failed(Failure.INVALID_SERVICE, "ticket not issued for this service")
    account = platform.account_by_id(redeemed.account_id)
    if account is None:
        return Validation.failed(Failure.INTERNAL_ERROR, "the ticket's account no longer exists")
    if proxy_callback:
        # CAS 3.0 section 2.5.4: no proxy-granting ticket can be issued, so the validation fails.
        return Validation.failed(
            Failure.UNAUTHORIZED_SERVICE_PROXY,
            "this CAS server issues no proxy-granting tickets: validate without pgtUrl",
        )
    return Validation(account=account, authenticated_at=redeemed.issued_at)


def redeem_at_ent(platform: Platform, ticket: str) -> tuple[Account | None, Failure | None]:
    """Consume a ticket at the ENT's callback: (account, None) if it was issued for one of the ENT's own
    callback URLs, else (None, failure code)."""
    redeemed = consume_ticket(platform, ticket) if ticket else None
    if redeemed is None:
        return None, Failure.INVALID_TICKET
    if not platform.services.is_ent_callback(redeemed.service):
        return None, Failure.INVALID_SERVICE
    account = platform.account_by_id(redeemed.account_id)
    return account, None if account else Failure.INVALID_TICKET
