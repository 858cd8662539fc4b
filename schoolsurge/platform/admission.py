"""Admission control: a worker serves at most `max_in_flight` requests at once and holds at most
`queue_length` more waiting; anything beyond is refused at once with 503 and Retry-After, as a load balancer
in front of a saturated application server would. Nothing ever waits in an unbounded queue.

These are the machine's limits. The profile's limits (profile_limits.py: rates and sessions, in national
units scaled to the run) come before them and, with the profiles' generous slots and queues, bind first.

An incident (POST /admin/capacity) removes a fraction of every worker's slots and queue (and of the profile's
rates), as losing that share of the servers in a datacenter fire would. The fraction is shared by the workers
through a small file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from schoolsurge.platform.asgi import json_reply
from schoolsurge.platform.metrics import Metrics
from schoolsurge.platform.settings import Settings
from schoolsurge.rundir.metrics import ShedReason

# Operators must be able to look and act while the platform is saturated.
EXEMPT_PREFIXES = ("/healthz", "/metrics", "/admin/")


def is_operators(scope: Scope) -> bool:
    """An operators' endpoint: bypasses the profile's limits and admission control (never the body limit)."""
    path: str = scope["path"]
    return path.startswith(EXEMPT_PREFIXES) or path == "/admin"


class CapacityState:
    """The share of capacity lost to an incident, shared by all workers through `path` (None: this process)."""

    CHECK_EVERY_S = 0.1  # how stale another worker's view of an incident may be

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fraction = 0.0
        self._checked = 0.0
        self._mtime_ns: int | None = None

    def fraction_lost(self) -> float:
        now = time.monotonic()
        if self.path is not None and now - self._checked >= self.CHECK_EVERY_S:
            self._checked = now
            self._reload()
        return self._fraction

    def _reload(self) -> None:
        assert self.path is not None
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime_ns:
                self._fraction = float(json.loads(self.path.read_text())["fraction_lost"])
                self._mtime_ns = mtime
        except (OSError, ValueError, KeyError, TypeError):
            self._fraction, self._mtime_ns = 0.0, None  # no incident file: full capacity

    def set_fraction_lost(self, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction_lost must be between 0 and 1, got {fraction}")
        self._fraction = fraction
        if self.path is not None:
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"fraction_lost": fraction}))
            os.replace(tmp, self.path)
            self._checked = time.monotonic()
            self._mtime_ns = self.path.stat().st_mtime_ns


def remaining(amount: int, fraction_lost: float) -> int:
    """What is left of `amount` slots after losing a fraction; a partial loss always leaves one slot."""
    if fraction_lost >= 1.0 or amount == 0:
        return 0
    return max(1, math.floor(amount * (1.0 - fraction_lost) + 0.5))


@dataclass
class Limits:
    in_flight: int
    queue: int


class Shed(Exception):
    def __init__(self, reason: ShedReason) -> None:
        super().__init__(reason)
        self.reason = reason


class AdmissionGate:
    """One worker's slots and bounded FIFO queue; used from its event loop only, so no locks."""

    def __init__(self, settings: Settings, capacity: CapacityState, metrics: Metrics) -> None:
        self.settings = settings
        self.capacity = capacity
        self.metrics = metrics
        self.in_flight = 0
        self.waiting: deque[asyncio.Future[None]] = deque()

    def limits(self) -> Limits:
        lost = self.capacity.fraction_lost()
        return Limits(remaining(self.settings.max_in_flight, lost), remaining(self.settings.queue_length, lost))

    async def acquire(self) -> None:
        limits = self.limits()
        self._dispatch(limits)  # capacity may have come back since the last release
        if self.in_flight < limits.in_flight and not self.waiting:
            self._take()
            return
        if len(self.waiting) >= limits.queue:
            raise Shed(ShedReason.QUEUE_FULL)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.metrics.queue_depth.inc()
        timer = asyncio.get_running_loop().call_later(self.settings.queue_timeout, self._expire, future)
        try:
            await future  # resolved by release() once a slot is ours, or failed by _expire()
        except asyncio.CancelledError:
            # The client went away: hand on a slot we were just given, or leave the queue.
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release()
            else:
                self._forget(future)
            raise
        finally:
            timer.cancel()

    def release(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.dec()
        self._dispatch(self.limits())

    def _take(self) -> None:
        self.in_flight += 1
        self.metrics.in_flight.inc()

    def _dispatch(self, limits: Limits) -> None:
        while self.waiting and self.in_flight < limits.in_flight:
            future = self.waiting.popleft()
            self.metrics.queue_depth.dec()
            if future.done():
                continue
            self._take()
            future.set_result(None)

    def _expire(self, future: asyncio.Future[None]) -> None:
        if not future.done():
            self._forget(future)
            future.set_exception(Shed(ShedReason.QUEUE_TIMEOUT))

    def _forget(self, future: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self.waiting.remove(future)
            self.metrics.queue_depth.dec()


class AdmissionControl:
    """Pure ASGI middleware putting every request but the operators' through the gate."""

    def __init__(self, app: ASGIApp, gate: AdmissionGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_operators(scope):
            await self.app(scope, receive, send)
            return
        try:
            await self.gate.acquire()
        except Shed as shed:
            self.gate.metrics.count_shed(shed.reason)
            full = shed.reason == ShedReason.QUEUE_FULL
            detail = "overloaded: " + ("admission queue full" if full else "waited too long")
            await json_reply(send, 503, f"{detail}, retry later", {"retry-after": str(self.gate.settings.retry_after)})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.release()
