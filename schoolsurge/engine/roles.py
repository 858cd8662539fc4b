"""What a Locust process does for the engine, by its role: one class each, as Locust's own runners are.

- `LocalRole` (one process): runs the agents over the whole schedule, keeps the ledger, writes the results.
- `MasterRole`: runs no agents; at test start gives each connected worker its part of the schedule and one
  shared start time, merges the ledgers the workers send with their stats reports, writes the results.
- `WorkerRole`: runs the agents over its part, sends its ledger with every stats report.

The assignment survives any ordering of connection and start: a worker asks for its part once it can hear
the answer (Locust connects a worker to the master before the locustfile's init event, where the handler is
registered), and the master answers at test start or, for a worker that asks later, when it asks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.share import FleetStatus

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

ASSIGN_MESSAGE = "schoolsurge:assign"
READY_MESSAGE = "schoolsurge:ready"
REPORT_KEY = "schoolsurge"
log = logging.getLogger(__name__)


class Role:
    runs_agents = True  # this process's Locust users live people's sessions
    writes_results = True  # this process writes sessions.csv, the manifest and the report

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start_test(self, start_unix: float) -> None:
        """A test starts: take (or hand out) the schedule with run second 0 at start_unix."""

    def ledger(self) -> Ledger:
        """The run's merged ledger as far as this process knows it."""
        return self.engine.share.ledger

    def fleet_status(self) -> FleetStatus:
        return self.engine.share.status()


class LocalRole(Role):
    def start_test(self, start_unix: float) -> None:
        self.engine.share.assign(1, 0, start_unix)


class MasterRole(Role):
    runs_agents = False

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.runner: MasterRunner = engine.environment.runner  # type: ignore[assignment]
        self.merged = Ledger()
        self.worker_status: dict[str, FleetStatus] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.runner.register_message(READY_MESSAGE, self._on_ready)
        engine.environment.events.worker_report.add_listener(self._on_worker_report)

    def start_test(self, start_unix: float) -> None:
        self.engine.share.keep_clock(start_unix)
        self.merged, self.worker_status = Ledger(), {}
        workers = sorted(self.runner.clients.values(), key=lambda node: self.runner.get_worker_index(node.id))
        self.assignments = {
            node.id: {"parts": len(workers), "index": index, "start_unix": start_unix}
            for index, node in enumerate(workers)
        }
        for client_id, assignment in self.assignments.items():
            self.runner.send_message(ASSIGN_MESSAGE, assignment, client_id=client_id)
        log.info("schedule split over %d workers", len(workers))

    def _on_ready(self, environment: Environment, msg: Any, **_: Any) -> None:
        assignment = self.assignments.get(msg.node_id)
        if assignment is not None:  # the test started before this worker could hear its part: send it again
            self.runner.send_message(ASSIGN_MESSAGE, assignment, client_id=msg.node_id)

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if not report:
            return
        self.merged.merge(Ledger.from_wire(report["ledger"]))
        waiting, active, remaining, loaded = report["status"]
        self.worker_status[client_id] = FleetStatus(waiting, active, remaining, loaded)

    def ledger(self) -> Ledger:
        return self.merged

    def fleet_status(self) -> FleetStatus:
        total = FleetStatus()
        for status in self.worker_status.values():
            total.add(status)
        return total


class WorkerRole(Role):
    writes_results = False

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        runner: WorkerRunner = engine.environment.runner  # type: ignore[assignment]
        runner.register_message(ASSIGN_MESSAGE, self._on_assign)
        engine.environment.events.report_to_master.add_listener(self._on_report_to_master)
        runner.send_message(READY_MESSAGE)  # now that the handler is in place, ask for a part

    def _on_assign(self, environment: Environment, msg: Any, **_: Any) -> None:
        start_unix = msg.data["start_unix"]
        if self.engine.share.start_unix == start_unix:
            return  # the same part again (the ready handshake can deliver it twice)
        share = self.engine.new_share()
        size = share.assign(msg.data["parts"], msg.data["index"], start_unix)
        log.info("worker part %d/%d: %d arrivals", msg.data["index"] + 1, msg.data["parts"], size)

    def _on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        share = self.engine.share
        status = share.status()
        data[REPORT_KEY] = {
            "ledger": share.ledger.take().to_wire(),
            "status": [status.waiting, status.active, status.remaining, status.loaded],
        }


def role_for(engine: Engine) -> Role:
    """The role of the engine's Locust process, from its runner (created before the locustfile's init)."""
    runner = engine.environment.runner
    if isinstance(runner, MasterRunner):
        return MasterRole(engine)
    if isinstance(runner, WorkerRunner):
        return WorkerRole(engine)
    return LocalRole(engine)
