"""Wire the engine into Locust's runners: local, master with workers (--processes or separate machines).

The master hands each connected worker its disjoint part of the schedule with one shared start time, and
merges the per-second ledgers the workers piggy-back on their regular stats reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from schoolsurge.engine.ledger import Ledger, write_histograms, write_sessions_csv
from schoolsurge.engine.runtime import Engine, FleetStatus
from schoolsurge.rundir import HISTOGRAMS, SESSIONS_CSV

ASSIGN_MESSAGE = "schoolsurge:assign"
REPORT_KEY = "schoolsurge"
SAMPLE_EVERY_S = 1.0
FLUSH_EVERY_S = 5.0
log = logging.getLogger("schoolsurge")


class EngineHooks:
    """Per-process glue; `engine_factory` builds a fresh Engine for each test start (web UI restarts too)."""

    def __init__(
        self,
        environment: Environment,
        engine_factory: Callable[[], Engine],
        run_dir: Path | None,
        clock_label: Callable[[int], str],
        on_start: Callable[[float], None] | None = None,
    ) -> None:
        self.environment = environment
        self.engine_factory = engine_factory
        self.engine = engine_factory()
        self.run_dir = run_dir
        self.clock_label = clock_label
        self.on_start = on_start
        self.greenlets: list[gevent.Greenlet] = []
        self.worker_status: dict[str, FleetStatus] = {}
        self.master_ledger = Ledger()
        runner = environment.runner
        events = environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.quitting.add_listener(self.on_quitting)
        if isinstance(runner, WorkerRunner):
            runner.register_message(ASSIGN_MESSAGE, self.on_assign)
            events.report_to_master.add_listener(self.on_report_to_master)
        if isinstance(runner, MasterRunner):
            events.worker_report.add_listener(self.on_worker_report)
        if not isinstance(runner, MasterRunner):
            self.spawn(self._sample_forever)
        if not isinstance(runner, WorkerRunner):
            self.spawn(self._flush_forever)

    def spawn(self, function: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """A background task of this run, ended by close()."""
        greenlet = gevent.spawn(function, *args)
        self.greenlets.append(greenlet)
        return greenlet

    def close(self) -> None:
        """Final write, then stop the background tasks (for library users and tests; Locust's exit ends them)."""
        self.write_sessions()
        gevent.killall(self.greenlets)

    # --- start: one shared clock, one part each -------------------------------------------------------
    def on_test_start(self, environment: Environment, **_: Any) -> None:
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            return  # the master's assignment message starts this process's part
        self.engine = self.engine_factory()
        self.master_ledger = Ledger()
        self.worker_status = {}
        start_unix = time.time()
        if isinstance(runner, MasterRunner):
            workers = sorted(runner.clients.values(), key=lambda node: runner.get_worker_index(node.id))
            self.engine.queue.load((), start_unix)  # the master runs no agents but keeps the clock
            for index, node in enumerate(workers):
                runner.send_message(
                    ASSIGN_MESSAGE, {"parts": len(workers), "index": index, "start_unix": start_unix}, client_id=node.id
                )
            log.info("schoolsurge: schedule split over %d workers", len(workers))
        else:
            self.engine.assign(1, 0, start_unix)
        if self.on_start is not None:
            self.on_start(start_unix)

    def on_assign(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.engine = self.engine_factory()
        size = self.engine.assign(msg.data["parts"], msg.data["index"], msg.data["start_unix"])
        log.info("schoolsurge: worker part %d/%d: %d arrivals", msg.data["index"] + 1, msg.data["parts"], size)

    # --- metrics from workers to master ------------------------------------------------------------------
    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        status = self.engine.status()
        data[REPORT_KEY] = {
            "ledger": self.engine.ledger.take().to_wire(),
            "status": [status.waiting, status.active, status.remaining, status.loaded],
        }

    def on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if not report:
            return
        self.master_ledger.merge(Ledger.from_wire(report["ledger"]))
        waiting, active, remaining, loaded = report["status"]
        self.worker_status[client_id] = FleetStatus(waiting, active, remaining, loaded)

    # --- what the shape and the progress line read ----------------------------------------------------
    def fleet_status(self) -> FleetStatus:
        if isinstance(self.environment.runner, MasterRunner):
            total = FleetStatus()
            for status in self.worker_status.values():
                total.add(status)
            return total
        return self.engine.status()

    def ledger(self) -> Ledger:
        """The run's merged ledger (on the master, or the single process)."""
        if isinstance(self.environment.runner, MasterRunner):
            return self.master_ledger
        return self.engine.ledger

    # --- periodic work ---------------------------------------------------------------------------------
    def _sample_forever(self) -> None:
        while True:
            gevent.sleep(SAMPLE_EVERY_S)
            runner = self.environment.runner
            self.engine.sample_gauges(runner.user_count if runner else 0)

    def _flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_EVERY_S)
            self.write_sessions()

    def write_sessions(self) -> None:
        if self.run_dir is None or not self.ledger().seconds:
            return
        try:
            write_sessions_csv(self.ledger(), self.run_dir / SESSIONS_CSV, self.clock_label)
            write_histograms(self.ledger(), self.run_dir / HISTOGRAMS)
        except OSError as error:
            log.error("schoolsurge: cannot write session metrics in %s: %s", self.run_dir, error)

    def on_test_stop(self, environment: Environment, **_: Any) -> None:
        if not isinstance(environment.runner, WorkerRunner):
            self.write_sessions()

    def on_quitting(self, environment: Environment, **_: Any) -> None:
        self.on_test_stop(environment)
