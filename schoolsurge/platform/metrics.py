"""Prometheus metrics of the platform, global across worker processes.

With PROMETHEUS_MULTIPROC_DIR set (the server sets it for its workers) prometheus-client keeps every value in
a per-process file there and a scrape, answered by any worker, adds them all up. Figures that live in the
database (active sessions, virtual classes) or in the capacity state are computed at scrape time instead.

The platform's CPU time is a counter each worker adds its own share to (os.times(), user + system, all its
threads): every CPU_RECORD_EVERY_S and when it answers a scrape, so the sum over workers lags by at most that.
A worker that dies keeps what it recorded (counters of dead processes stay in the sum).

How well the machine let each worker run (its event loop's lag and stalls, its run-queue wait) is measured by
scheduling.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schoolsurge.platform.scheduling import thread_schedule_s
from schoolsurge.rundir.metrics import (
    DB_STATEMENT_SECONDS,
    EVENT_LOOP_CPU,
    EVENT_LOOP_LAG,
    EVENT_LOOP_STALLED,
    HTTP_REQUESTS,
    IN_FLIGHT,
    LOGINS,
    PLATFORM_CPU_SECONDS,
    QUEUE_DEPTH,
    RATE_GATE_WAITING,
    RUN_QUEUE_WAIT,
    SHED,
    SHED_BY_LIMIT,
    LoginOutcome,
    ShedLimit,
    ShedReason,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
HASH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
DB_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
CPU_RECORD_EVERY_S = 0.5


class Metrics:
    """The platform's instruments, on a registry of their own so several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            HTTP_REQUESTS, "HTTP requests by route template and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "schoolsurge_http_request_duration_seconds",
            "Time from arrival to response, admission queue included, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(IN_FLIGHT, "Requests being served", registry=r, multiprocess_mode="livesum")
        self.queue_depth = Gauge(
            QUEUE_DEPTH,
            "Requests waiting for a slot",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.shed = Counter(
            SHED,
            "Requests refused with 503 by the profile's limits or admission control, by reason",
            ["reason"],
            registry=r,
        )
        self.shed_by_limit = Counter(
            SHED_BY_LIMIT,
            "Requests refused with 503 by kind of limit: profile (national units) or machine (slots, queue)",
            ["limit"],
            registry=r,
        )
        self.rate_gate_waiting = Gauge(
            RATE_GATE_WAITING,
            "Requests waiting for a token of the profile's rate limits, by gate (request, login)",
            ["gate"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cpu = Counter(
            PLATFORM_CPU_SECONDS,
            "User and system CPU time of the platform's worker processes, all threads",
            registry=r,
        )
        self._cpu_recorded = 0.0
        self._cpu_lock = threading.Lock()
        self.loop_lag = Histogram(
            EVENT_LOOP_LAG,
            "How late each worker's event loop woke from the scheduling probe's sleep",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.loop_stalled = Counter(
            EVENT_LOOP_STALLED,
            "Lateness of the event loops' wakeups later than the stall threshold: time the workers served nobody",
            registry=r,
        )
        # Declared only where the kernel says: a zero would claim the workers never waited for a CPU.
        self.loop_schedule = (
            (
                Counter(EVENT_LOOP_CPU, "Time the workers' event-loop threads ran on a CPU", registry=r),
                Counter(
                    RUN_QUEUE_WAIT, "Time the workers' event-loop threads were runnable, waiting for a CPU", registry=r
                ),
            )
            if thread_schedule_s() is not None
            else None
        )
        self.logins = Counter(LOGINS, "CAS login attempts by outcome", ["outcome"], registry=r)
        self.hashing = Histogram(
            "schoolsurge_password_hash_seconds", "Time spent checking bcrypt hashes", buckets=HASH_BUCKETS, registry=r
        )
        self.db_time = Histogram(
            DB_STATEMENT_SECONDS,
            "Time SQLite statements took to execute, lock waits included (rate of the sum: database seconds/s)",
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.vc_created = Counter("schoolsurge_virtual_classes_created", "Virtual classes created", registry=r)
        self.vc_joins = Counter("schoolsurge_virtual_class_joins", "Virtual class joins", registry=r)
        self.submissions = Counter("schoolsurge_homework_submissions", "Homework submissions stored", registry=r)
        self.homework_posted = Counter("schoolsurge_homework_posted", "Homework posted by teachers", registry=r)
        for outcome in LoginOutcome:
            self.logins.labels(outcome)
        for reason in ShedReason:
            self.shed.labels(reason)
        for limit in ShedLimit:
            self.shed_by_limit.labels(limit)
        for gate in ("request", "login"):
            self.rate_gate_waiting.labels(gate)
        self.record_cpu()

    def count_shed(self, reason: ShedReason) -> None:
        self.shed.labels(reason).inc()
        self.shed_by_limit.labels(reason.limit).inc()

    def record_cpu(self) -> None:
        """Add this process's CPU time used since the last record to the counter."""
        times = os.times()
        used = times.user + times.system
        with self._cpu_lock:
            if used > self._cpu_recorded:
                self.cpu.inc(used - self._cpu_recorded)
                self._cpu_recorded = used

    async def record_cpu_periodically(self) -> None:
        """Runs for the worker's lifetime (its app's lifespan)."""
        while True:
            await asyncio.sleep(CPU_RECORD_EVERY_S)
            self.record_cpu()

    def exposition(self, *collectors: Collector) -> bytes:
        """Prometheus text of every worker's instruments plus the given scrape-time collectors."""
        self.record_cpu()
        registry = CollectorRegistry(auto_describe=False)
        if os.environ.get(MULTIPROC_ENV):
            MultiProcessCollector(registry)
        else:
            registry.register(_Forward(self.registry))
        for collector in collectors:
            registry.register(collector)
        return generate_latest(registry)


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


class GaugesAtScrape(Collector):
    """Gauges computed when scraped: `read()` returns (name, help, {labels tuple: value}, label names)."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, dict[tuple[str, ...], float], list[str]]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for name, documentation, values, labels in self.read():
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family


class RouteTemplates:
    """Route templates by path pattern, to label requests the router never saw (shed ones)."""

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        self.methods: dict[str, set[str]] = {}
        for route in routes:
            if isinstance(route, Route | APIRoute):
                if route.path not in self.methods:
                    self.patterns.append((route.path_regex, route.path))
                self.methods.setdefault(route.path, set()).update(route.methods or ())

    def of(self, scope: Scope) -> str:
        """The template a request matches (never a raw id); 'unmatched' for unknown paths."""
        route = scope.get("route")
        if route is not None and getattr(route, "path", None):
            return route.path
        path = scope.get("path", "")
        return next((template for pattern, template in self.patterns if pattern.match(path)), "unmatched")

    def allowed(self, path: str) -> str:
        """The Allow header for a path: every method of every route on it (GET and POST /cas/login...)."""
        template = next((template for pattern, template in self.patterns if pattern.match(path)), None)
        return ", ".join(sorted(self.methods.get(template, ()))) if template else ""


class RequestMetrics:
    """Pure ASGI middleware counting requests by route template and status code, and timing them."""

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: RouteTemplates) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering
        started = time.perf_counter()
        recorded = False

        def record() -> None:
            nonlocal recorded
            recorded = True
            route = self.templates.of(scope)
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not recorded:
                # Counted before the last of the response leaves: a client that has its answer and then reads the
                # metrics (from any worker) finds it counted.
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if not recorded:
                record()
