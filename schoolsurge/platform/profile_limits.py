"""The profile's limits, in national units scaled to the run (settings.py): rates of logins and of requests,
and live sessions. They come before the machine's admission control (admission.py) and bind first.

Rates: a FIFO token bucket per rate and per worker, refilled continuously at the run-level rate divided by the
number of workers (each worker an equal share; an incident takes its share away, as it does of the slots),
holding at most one second's worth (at least one token). A request takes a token at once if there is one;
otherwise it waits its turn, on the event loop (no thread, no admission slot held), up to its timeout, and
then either goes on or gets 503 with Retry-After. That is how an overloaded 2021 server behaved: slow, then
failing, so people's retries were paced by the waiting. The waiting list is bounded (rate x timeout x 2 + 10
waiters); beyond it, 503 at once. A credential submission (POST /cas/login, or POST /oidc/login in OpenID
Connect mode) needs a request token, then a login token; it waits at most the request timeout for the first
and the login timeout in all.

Sessions: a credential submission while the platform holds the run-level number of live sessions is refused
at once with 503 (as Ile-de-France capped its ENT's users in 2021). Live sessions are counted in the database,
at most every SESSION_COUNT_EVERY_S per worker, plus the logins this worker let through since.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from starlette.types import ASGIApp, Receive, Scope, Send

from schoolsurge.platform.admission import CapacityState, Shed, is_operators
from schoolsurge.platform.asgi import json_reply
from schoolsurge.platform.metrics import Metrics
from schoolsurge.platform.settings import Settings
from schoolsurge.rundir.metrics import ShedReason

BURST_S = 1.0  # a bucket holds this many seconds of its rate...
# ...and at least this many tokens: nationally a second of logins is thousands of tokens and smooths chance
# bursts away; a run at a small scale gets about one token a second per worker, and without a floor it would
# refuse two people who happen to arrive together even far below the profile's rate (a capacity sweep at scale
# 5e-6 met its SLOs only up to 40% of the resized profile's login rate; with 3 tokens, 57%).
MIN_BURST_TOKENS = 10.0
SESSION_COUNT_EVERY_S = 0.25  # how stale a worker's count of live sessions may be
LOGIN_PATHS = frozenset({"/cas/login", "/oidc/login"})  # where credentials are submitted, CAS or OpenID Connect

DETAILS = {
    ShedReason.LOGIN_RATE: "login capacity reached (profile limit), retry later",
    ShedReason.REQUEST_RATE: "request capacity reached (profile limit), retry later",
    ShedReason.SESSIONS_FULL: "platform full: too many users connected (profile limit), retry later",
}


def is_credential_submission(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"] in LOGIN_PATHS


class RateGate:
    """One worker's FIFO token bucket for one rate; used from its event loop only, so no locks."""

    def __init__(
        self, reason: ShedReason, rate: float, timeout: float, capacity: CapacityState, metrics: Metrics, gate: str
    ) -> None:
        self.reason = reason  # the shed reason of its refusals
        self.rate = rate  # tokens per second, this worker's share, before any incident
        self.timeout = timeout  # run seconds
        self.capacity = capacity
        self.waiting_gauge = metrics.rate_gate_waiting.labels(gate)
        self.max_waiting = math.ceil(rate * timeout * 2) + 10
        self.tokens = self.burst(rate)
        self.stamp = time.monotonic()
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    @staticmethod
    def burst(rate: float) -> float:
        return max(MIN_BURST_TOKENS, rate * BURST_S)

    def rate_now(self) -> float | None:
        """This worker's rate after an incident; None after a total loss (the gate steps aside: admission
        control then refuses everything at once, as before)."""
        lost = self.capacity.fraction_lost()
        return None if lost >= 1.0 else self.rate * (1.0 - lost)

    def _refill(self, rate: float) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst(rate), self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    async def take(self, timeout: float) -> None:
        """A token, at once or after waiting in turn for at most `timeout` seconds; else Shed(reason)."""
        rate = self.rate_now()
        if rate is None:
            return
        self._refill(rate)
        if not self.waiting and self.tokens >= 1.0:
            self.tokens -= 1.0
            return
        if timeout <= 0.0 or len(self.waiting) >= self.max_waiting:
            raise Shed(self.reason)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self.waiting.append(future)
        self.waiting_gauge.inc()
        self._schedule(rate)
        expiry = loop.call_later(timeout, self._expire, future)
        try:
            await future  # resolved by _dispatch() with a token, or failed by _expire()
        except asyncio.CancelledError:
            # The client went away: give back a token we were just handed, or leave the line.
            if future.done() and not future.cancelled() and future.exception() is None:
                self.tokens += 1.0
                self._dispatch()
            else:
                self._forget(future)
            raise
        finally:
            expiry.cancel()

    def _schedule(self, rate: float) -> None:
        """Wake up when the next token is due, if anybody waits and no wake-up is set."""
        if self.timer is None and self.waiting:
            delay = max(0.0, (1.0 - self.tokens) / rate)
            self.timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        self._dispatch()

    def _dispatch(self) -> None:
        rate = self.rate_now()
        if rate is None:  # a total loss: let the waiters through to admission control, which refuses them
            rate, self.tokens = self.rate, float(len(self.waiting))
        else:
            self._refill(rate)
        while self.waiting and self.tokens >= 1.0 - 1e-9:
            future = self.waiting.popleft()
            self.waiting_gauge.dec()
            if future.done():
                continue
            self.tokens = max(0.0, self.tokens - 1.0)
            future.set_result(None)
        self._schedule(rate)

    def _expire(self, future: asyncio.Future[None]) -> None:
        if not future.done():
            self._forget(future)
            future.set_exception(Shed(self.reason))

    def _forget(self, future: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self.waiting.remove(future)
            self.waiting_gauge.dec()


class SessionCap:
    """The run-level cap on live sessions, from a count in the database refreshed at most every
    SESSION_COUNT_EVERY_S (in a thread of its own, off the event loop), plus the logins let through since."""

    def __init__(self, limit: int, count: Callable[[], int]) -> None:
        self.limit = limit
        self._count = count
        self.live = 0
        self._counted_at = -math.inf
        self._refresh: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def check(self) -> None:
        if time.monotonic() - self._counted_at >= SESSION_COUNT_EVERY_S:
            if self._refresh is None:
                self._refresh = asyncio.get_running_loop().create_task(self._recount())
            await asyncio.shield(self._refresh)
        if self.live >= self.limit:
            raise Shed(ShedReason.SESSIONS_FULL)

    def admitted(self) -> None:
        """A credential submission let through: count it as a session until the next count says otherwise."""
        self.live += 1

    async def _recount(self) -> None:
        try:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-count")
            self.live = await asyncio.get_running_loop().run_in_executor(self._executor, self._count)
        except sqlite3.Error:
            pass  # keep the last count (a busy database is no reason to refuse or admit everyone)
        finally:
            self._counted_at = time.monotonic()
            self._refresh = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False)


class ProfileGates:
    """One worker's gates for the profile's limits, from the settings' run-level values."""

    def __init__(
        self, settings: Settings, capacity: CapacityState, metrics: Metrics, count_sessions: Callable[[], int]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        share = 1.0 / settings.workers
        login_rate, request_rate, sessions = settings.run_login_rate, settings.run_request_rate, settings.run_sessions
        self.requests = (
            None
            if request_rate is None
            else RateGate(
                ShedReason.REQUEST_RATE,
                request_rate * share,
                settings.run_request_timeout,
                capacity,
                metrics,
                "request",
            )
        )
        self.logins = (
            None
            if login_rate is None
            else RateGate(
                ShedReason.LOGIN_RATE, login_rate * share, settings.run_login_timeout, capacity, metrics, "login"
            )
        )
        self.sessions = None if sessions is None else SessionCap(sessions, count_sessions)

    async def admit(self, scope: Scope) -> None:
        """Return once the request may go on to admission control; Shed(reason) if refused."""
        login = is_credential_submission(scope)
        started = time.monotonic()
        if login and self.sessions is not None:
            await self.sessions.check()  # a full platform refuses at once
        if self.requests is not None:
            await self.requests.take(self.requests.timeout)
        if login and self.logins is not None:
            await self.logins.take(self.logins.timeout - (time.monotonic() - started))
        if login and self.sessions is not None:
            await self.sessions.check()  # it may have filled up while we waited
            self.sessions.admitted()


class ProfileLimits:
    """Pure ASGI middleware putting every request but the operators' through the profile's gates."""

    def __init__(self, app: ASGIApp, gates: ProfileGates) -> None:
        self.app = app
        self.gates = gates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_operators(scope):
            await self.app(scope, receive, send)
            return
        try:
            await self.gates.admit(scope)
        except Shed as shed:
            self.gates.metrics.count_shed(shed.reason)
            retry_after = str(self.gates.settings.retry_after)
            await json_reply(send, 503, DETAILS[shed.reason], {"retry-after": retry_after})
            return
        await self.app(scope, receive, send)
