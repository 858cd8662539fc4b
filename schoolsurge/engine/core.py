"""The engine installed on one Locust process, and its one entry point and accessor.

    engine = install(environment, context)   # once the runner exists (the locustfile's init event)
    engine = engine_of(environment)          # anywhere else: agents, the load shape, tests

The engine keeps the run's context, its kind (a morning, a sweep, the closed model: kinds/), the process's role
(local, master or worker: roles.py), the current test's share (share.py) and how that test ended, the background
tasks of the run, and the run directory it writes (results.py). What changes during a run changes through its
methods: a new share at each test (new_share), the test completed (complete) or refused (refuse).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.runners import WorkerRunner

from schoolsurge.engine.bots import run_bot_floods
from schoolsurge.engine.context import SurgeContext
from schoolsurge.engine.exporter import MetricsServer, start_metrics_server
from schoolsurge.engine.http import GuardedOpener
from schoolsurge.engine.incidents import drive_capacity_incidents
from schoolsurge.engine.kinds import Kind, pick_kind
from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.progress import report_progress
from schoolsurge.engine.requests import failure_kind, is_people_request
from schoolsurge.engine.results import RunDirectoryWriter
from schoolsurge.engine.roles import Role, role_for
from schoolsurge.engine.share import FleetStatus, Share
from schoolsurge.rundir import ClientSteps, Counter

SAMPLE_EVERY_S = 1.0
SATURATED_CPU_PERCENT = 90.0  # a Locust process this busy can no longer keep the clock (Locust warns at 90%)
WORKER_INSTALL_WAIT_S = 30.0  # how long a worker's first agents wait for its init to install the engine
log = logging.getLogger(__name__)
_INSTALLED: weakref.WeakKeyDictionary[Environment, Engine] = weakref.WeakKeyDictionary()
_INSTALL_DONE: weakref.WeakKeyDictionary[Environment, Event] = weakref.WeakKeyDictionary()


class EngineNotInstalledError(RuntimeError):
    """A Locust environment the engine was never installed on (a locustfile without schoolsurge's init)."""


class Engine:
    """The engine installed on one Locust process (install()); reached anywhere with engine_of()."""

    def __init__(self, environment: Environment, context: SurgeContext) -> None:
        self.environment = environment
        self.context = context
        self.http = GuardedOpener(context.allow_host, context.client_settings.max_body_bytes)  # all its HTTP
        self.kind: Kind = pick_kind(self, _user_classes(environment))
        self._share = self.kind.new_share()
        self._completed = False  # the current test ran as planned (complete())
        self._refused: str | None = None  # why the loopback guard stopped the current test, when it did (refuse())
        self._stopped_at_s: float | None = None  # run second at which the current test stopped
        self._greenlets: list[gevent.Greenlet] = []
        self.role: Role = role_for(self)
        self.results = RunDirectoryWriter(self) if self.role.writes_results and context.run_dir else None
        self._metrics_server: MetricsServer | None = None  # the run's /metrics (exporter.py), started by install()

    @property
    def share(self) -> Share:
        """This process's share of the current test (share.py)."""
        return self._share

    def new_share(self) -> Share:
        """A fresh share for a new test (the web UI can start several), of the run's kind."""
        self._share = self.kind.new_share()
        return self._share

    def ledger(self) -> Ledger:
        """The run's ledger: merged over the workers on the master, this process's own elsewhere."""
        return self.role.ledger()

    def client_steps(self) -> ClientSteps:
        """The run's record of the client's steps: merged over the workers on the master."""
        return self.role.client_steps()

    def fleet_status(self) -> FleetStatus:
        return self.role.fleet_status()

    @property
    def completed(self) -> bool:
        """Whether the current test ran as planned (the run's status `completed`): its kind's stop rule ended it
        (the load shape), or, in the closed model, it stopped. Assignable, for a test that drives the shape."""
        return self._completed

    @completed.setter
    def completed(self, completed: bool) -> None:
        self._completed = completed

    def complete(self) -> None:
        """The current test ran as planned: the run ends `completed`."""
        self._completed = True

    @property
    def refused(self) -> str | None:
        """Why the loopback guard stopped the current test, if it did (the manifest's `stopped_by`)."""
        return self._refused

    @property
    def stopped_at_s(self) -> float | None:
        """The run second at which the current test stopped; None while it runs."""
        return self._stopped_at_s

    def refuse(self, reason: str) -> None:
        """A client asked for a URL the loopback guard refuses (nothing was sent to it): the whole test stops,
        and the run is recorded as refused (manifest `stopped_by`), with what was measured until then. The
        first refusal stops it; the role knows how (a worker asks its master)."""
        if self._refused is not None:
            return
        self._refused = reason
        log.error("%s; stopping the test", reason)
        self.role.stop_refused(reason)

    def change_schedule(self, change: dict[str, Any]) -> None:
        """The kind changes the schedule during the test (a sweep's refinement step): every process that runs
        agents applies it to its part (roles.py)."""
        self.role.change_schedule(change)

    def spawn(self, function: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """A background task of this run, ended by close()."""
        greenlet = gevent.spawn(function, *args)
        self._greenlets.append(greenlet)
        return greenlet

    def close(self) -> None:
        """Final write, then stop the background tasks (Locust's exit ends them too)."""
        if self.results is not None:
            self.results.write_sessions()
        if self._metrics_server is not None:
            self._metrics_server.stop()
        gevent.killall(self._greenlets)

    # ---- Locust events ----------------------------------------------------------------------------------

    def _on_test_start(self, environment: Environment, **_: Any) -> None:
        if not self.role.writes_results:
            return  # a worker starts when the master's assignment arrives
        start_unix = time.time()
        self._completed = False
        self._stopped_at_s = self._refused = None
        self.new_share()
        self.kind.test_started(start_unix)
        self.role.start_test(start_unix)
        if self.results is not None:
            self.results.test_started(start_unix)
        self.spawn(drive_capacity_incidents, self.context, self.http, environment.host, lambda: start_unix)

    def _on_test_stop(self, environment: Environment, **_: Any) -> None:
        self._share.stepper.stop()  # Locust has stopped the agents; the people they left paused stop too
        self.role.stop_test()
        if self._share.queue.loaded:
            self._stopped_at_s = self._share.queue.run_seconds()
        if self.results is not None:
            self.results.write_sessions()
        self.kind.test_stopped()

    def _on_quitting(self, environment: Environment, **_: Any) -> None:
        if self.results is not None:
            self.results.finish()
        if self._metrics_server is not None:  # the final figures, served a while longer, then no more
            self._metrics_server.linger_and_stop()

    def _on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response: Any = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        # On every request's path: as little as it takes (failure_kind only for a failed request).
        share = self._share
        queue = share.queue
        if queue.loaded and is_people_request(request_type, name):
            failure = None if exception is None else failure_kind(response, exception)
            share.ledger.request(queue.run_seconds(), response_time, failure)

    def _sample_forever(self) -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            runner = self.environment.runner
            if runner is None:
                continue
            cpu = runner.current_cpu_usage
            share = self._share
            share.sample_gauges(runner.user_count, round(cpu))
            if cpu > SATURATED_CPU_PERCENT and share.queue.loaded:
                share.ledger.count(share.queue.run_seconds(), Counter.GENERATOR_SATURATED_S)


def install(environment: Environment, context: SurgeContext) -> Engine:
    """Attach the engine to an environment whose runner exists; once per environment."""
    if environment in _INSTALLED:
        raise RuntimeError("the engine is already installed on this environment")
    engine = Engine(environment, context)
    _INSTALLED[environment] = engine
    events = environment.events
    events.test_start.add_listener(engine._on_test_start)
    events.test_stop.add_listener(engine._on_test_stop)
    events.quitting.add_listener(engine._on_quitting)
    if engine.role.runs_agents:
        events.request.add_listener(engine._on_request)
        engine.spawn(engine._sample_forever)
        engine.spawn(run_bot_floods, engine)
    if engine.role.writes_results:
        engine.spawn(report_progress, engine)
        engine._metrics_server = start_metrics_server(engine, engine.context.monitoring)
    if engine.results is not None:
        engine.spawn(engine.results.flush_forever)
        engine.spawn(engine.results.target_metrics.scrape_forever)
    _install_done(environment).set()
    return engine


def _user_classes(environment: Environment) -> list[type]:
    """The Locust user classes the run may spawn (the web UI's class picker offers them all)."""
    return list((environment.available_user_classes or {}).values()) or list(environment.user_classes)


def _install_done(environment: Environment) -> Event:
    event = _INSTALL_DONE.get(environment)
    if event is None:
        event = _INSTALL_DONE[environment] = Event()
    return event


def _may_be_installing(environment: Environment) -> bool:
    """A worker's init may still be running: its runner exists (or is being built: a worker that joins a
    running test gets its first spawn while still connecting) and this is a Locust greenlet, not the main one
    (which is the one that runs init)."""
    runner = environment.runner
    return (runner is None or isinstance(runner, WorkerRunner)) and gevent.getcurrent().parent is not None


def engine_of(environment: Environment) -> Engine:
    """The engine installed on this environment.

    On a worker this may wait: Locust connects a worker to its master before the init event that installs the
    engine, and a master that starts the test at once (or is running it already) can have the worker spawn
    agents while that init is still running or even before it began; those agents wait for the engine."""
    engine = _INSTALLED.get(environment)
    if engine is None and _may_be_installing(environment):
        _install_done(environment).wait(WORKER_INSTALL_WAIT_S)
        engine = _INSTALLED.get(environment)
    if engine is None:
        raise EngineNotInstalledError(
            "the open-arrival engine is not installed on this Locust environment; run a locustfile that imports "
            "schoolsurge.locustfile (e.g. locustfiles/surge.py), or call schoolsurge.engine.install()"
        )
    return engine
