"""The engine installed on one Locust process, and its one entry point and accessor.

    engine = install(environment, context)   # once the runner exists (the locustfile's init event)
    engine = engine_of(environment)          # anywhere else: agents, the load shape, tests

The engine keeps the run's context, the process's role (local, master or worker: roles.py), the current
test's share (share.py), the background tasks of the run, and the run directory it writes (results.py).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import gevent
from locust.env import Environment

from schoolsurge.engine.bots import run_bot_floods
from schoolsurge.engine.context import SurgeContext
from schoolsurge.engine.http import HostGuard
from schoolsurge.engine.incidents import drive_capacity_incidents
from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.progress import report_progress
from schoolsurge.engine.requests import failure_kind, is_people_request
from schoolsurge.engine.results import RunDirectoryWriter
from schoolsurge.engine.roles import Role, role_for
from schoolsurge.engine.share import FleetStatus, ProcessShare
from schoolsurge.engine.sweep import watch_sweep

SAMPLE_EVERY_S = 1.0
log = logging.getLogger(__name__)
_INSTALLED: weakref.WeakKeyDictionary[Environment, Engine] = weakref.WeakKeyDictionary()


class EngineNotInstalledError(RuntimeError):
    """A Locust environment the engine was never installed on (a locustfile without schoolsurge's init)."""


class Engine:
    def __init__(self, environment: Environment, context: SurgeContext) -> None:
        self.environment = environment
        self.context = context
        self.guard = HostGuard(context.allow_host)
        self.share = ProcessShare(context.replay, context.parameters)
        self.completed = False  # set by the load shape once the whole window has been replayed
        self.sweep_stopped_after: int | None = None  # a sweep's step that breached past the margin
        self.stopped_at_s: float | None = None  # run second at which the test stopped
        self.greenlets: list[gevent.Greenlet] = []
        self.role: Role = role_for(self)
        self.results = RunDirectoryWriter(self) if self.role.writes_results and context.run_dir else None

    def new_share(self) -> ProcessShare:
        """A fresh share for a new test (the web UI can start several)."""
        self.share = ProcessShare(self.context.replay, self.context.parameters)
        return self.share

    def ledger(self) -> Ledger:
        """The run's ledger: merged over the workers on the master, this process's own elsewhere."""
        return self.role.ledger()

    def fleet_status(self) -> FleetStatus:
        return self.role.fleet_status()

    def stop_sweep(self, step: int) -> None:
        """End the sweep after this step (the stop rule); the load shape stops the test at its next tick."""
        self.sweep_stopped_after = step

    def spawn(self, function: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """A background task of this run, ended by close()."""
        greenlet = gevent.spawn(function, *args)
        self.greenlets.append(greenlet)
        return greenlet

    def close(self) -> None:
        """Final write, then stop the background tasks (Locust's exit ends them too)."""
        if self.results is not None:
            self.results.write_sessions()
        gevent.killall(self.greenlets)

    # ---- Locust events ----------------------------------------------------------------------------------

    def _on_test_start(self, environment: Environment, **_: Any) -> None:
        if not self.role.writes_results:
            return  # a worker starts when the master's assignment arrives
        start_unix = time.time()
        self.completed = False
        self.sweep_stopped_after = self.stopped_at_s = None
        self.new_share()
        self.role.start_test(start_unix)
        if self.results is not None:
            self.results.test_started(start_unix)
        self.spawn(drive_capacity_incidents, self.context, environment.host, lambda: start_unix)
        if self.context.replay.is_sweep:
            self.spawn(watch_sweep, self)

    def _on_test_stop(self, environment: Environment, **_: Any) -> None:
        if self.share.queue.loaded:
            self.stopped_at_s = self.share.queue.run_seconds()
        if self.results is not None:
            self.results.write_sessions()

    def _on_quitting(self, environment: Environment, **_: Any) -> None:
        if self.results is not None:
            self.results.finish()

    def _on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response: Any = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        queue = self.share.queue
        if queue.loaded and is_people_request(request_type, name):
            self.share.ledger.request(queue.run_seconds(), response_time, failure_kind(response, exception))

    def _sample_forever(self) -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            runner = self.environment.runner
            if runner is None:
                continue
            self.share.sample_gauges(runner.user_count, round(runner.current_cpu_usage))


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
    if engine.results is not None:
        engine.spawn(engine.results.flush_forever)
    return engine


def engine_of(environment: Environment) -> Engine:
    """The engine installed on this environment."""
    try:
        return _INSTALLED[environment]
    except KeyError:
        raise EngineNotInstalledError(
            "the open-arrival engine is not installed on this Locust environment; run a locustfile that imports "
            "schoolsurge.locustfile (e.g. locustfiles/surge.py), or call schoolsurge.engine.install()"
        ) from None
