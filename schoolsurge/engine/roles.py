"""What a Locust process does for the engine, by its role: one class each, as Locust's own runners are.

- `LocalRole` (one process): runs the agents over the whole schedule, keeps the ledger, writes the results.
- `MasterRole`: runs no agents; at test start gives each connected worker its part of the schedule and one
  shared start time, merges the ledgers (and records of the client's steps) the workers send with their stats
  reports, writes the results, and
  watches the workers: one that dies or leaves during the test is lost (what of its part had not started is
  counted `lost`), one that joins after the start is late (it takes no part).
- `WorkerRole`: runs the agents over its part, sends its ledger and its record of the client's steps with every
  stats report.

A kind that changes the schedule during the test (a sweep's refinement step, whose level is chosen from the
steps judged so far) calls `change_schedule` on the process that keeps the results: every process that runs
agents applies the change to its own part (the kind's `apply_schedule_change`; a master sends it to its workers,
each of which says when it applied it). A worker counted lost when a change was sent is sent it again when it
reports again; one that applied a change after the change's start, or never confirmed it, is said in the
manifest's `late_workers` (its part of that step started late); one lost for good is counted lost on its part
as the changes left it (the kind's `part_arrival_times`), not as planned.

A URL the loopback guard refuses stops the whole test (Engine.refuse): a single process or a master quits;
a worker reports what it measured, then tells its master why (`schoolsurge:url-refused`), which quits.

The assignment survives any ordering of connection and start: a worker asks for its part once it can hear
the answer (Locust connects a worker to the master before the locustfile's init event, where the handler is
registered, and a master may start the test at once), and the master answers at test start or, for a worker
that asks later, when it asks.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent
from locust.env import Environment
from locust.runners import STATE_INIT, STATE_MISSING, STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.share import FleetStatus
from schoolsurge.rundir import ClientSteps, Counter
from schoolsurge.scenario import seconds_to_clock

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

ASSIGN_MESSAGE = "schoolsurge:assign"
SCHEDULE_CHANGE_MESSAGE = "schoolsurge:schedule-change"
SCHEDULE_APPLIED_MESSAGE = "schoolsurge:schedule-applied"
READY_MESSAGE = "schoolsurge:ready"
REFUSED_MESSAGE = "schoolsurge:refused"
URL_REFUSED_MESSAGE = "schoolsurge:url-refused"
REPORT_KEY = "schoolsurge"
WATCH_EVERY_S = 1.0
CONNECTED_STATES = (STATE_INIT, STATE_SPAWNING, STATE_RUNNING)  # Locust's STATE_INIT is a worker's "ready"
SETTLED = (Counter.SCHEDULED, Counter.STARTED, Counter.DROPPED)  # what the master follows of each part
log = logging.getLogger(__name__)


class Role:
    runs_agents = True  # this process's Locust users live people's sessions
    writes_results = True  # this process writes sessions.csv, the manifest and the report

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start_test(self, start_unix: float) -> None:
        """A test starts: take (or hand out) the schedule with run second 0 at start_unix."""

    def stop_test(self) -> None:
        """The test has stopped."""

    def stop_refused(self, reason: str) -> None:
        """Stop the whole test: a client asked for a URL the loopback guard refuses (Engine.refuse)."""
        gevent.spawn(self.engine.environment.runner.quit)  # not from the agent that is about to stop

    def change_schedule(self, change: dict[str, Any]) -> None:
        """Apply the kind's change of the schedule (its wire form) on every process that runs agents."""
        self.engine.kind.apply_schedule_change(change)

    def ledger(self) -> Ledger:
        """The run's merged ledger as far as this process knows it."""
        return self.engine.share.ledger

    def client_steps(self) -> ClientSteps:
        """The run's record of the client's steps as far as this process knows it."""
        return self.engine.share.client_steps

    @property
    def processes(self) -> int:
        """The Locust processes that run the test's agents (a master's workers that took a part)."""
        return 1

    def fleet_status(self) -> FleetStatus:
        return self.engine.share.status()


class LocalRole(Role):
    def start_test(self, start_unix: float) -> None:
        self.engine.share.assign(1, 0, start_unix)


@dataclass
class WorkerPart:
    """One worker's part of the test, as the master follows it."""

    worker: str
    parts: int
    index: int
    start_unix: float
    heard: Ledger = field(default_factory=Ledger)  # its SCHEDULED, STARTED and DROPPED counts, by cohort second
    last_report_unix: float | None = None
    lost: Ledger | None = None  # what was counted for its part when it was lost (undone if it comes back)
    refused: str | None = None  # why the worker refused its part (it replays another run)
    applied: dict[int, float] = field(default_factory=dict)  # schedule change -> run second the worker applied it

    def hear(self, piece: Ledger) -> None:
        self.last_report_unix = time.time()
        for second, bucket in piece.seconds.items():
            for name in SETTLED:
                if bucket.counters.get(name):
                    self.heard.count(second, name, bucket.counters[name])


class MasterRole(Role):
    runs_agents = False

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.runner: MasterRunner = engine.environment.runner  # type: ignore[assignment]
        self.merged = Ledger()
        self.merged_steps = ClientSteps()
        self.worker_status: dict[str, FleetStatus] = {}
        self.assignments: dict[str, WorkerPart] = {}
        self.lost_workers: list[dict[str, Any]] = []
        self.late_workers: list[dict[str, Any]] = []
        self.changes: list[dict[str, Any]] = []  # the kind's schedule changes this test, in order
        self.runner.register_message(READY_MESSAGE, self._on_ready)
        self.runner.register_message(SCHEDULE_APPLIED_MESSAGE, self._on_schedule_applied)
        self.runner.register_message(REFUSED_MESSAGE, self._on_refused)
        self.runner.register_message(URL_REFUSED_MESSAGE, self._on_url_refused)
        engine.environment.events.worker_report.add_listener(self._on_worker_report)
        engine.spawn(self._watch_workers)

    def start_test(self, start_unix: float) -> None:
        self.engine.share.keep_clock(start_unix)
        self.merged, self.merged_steps, self.worker_status = Ledger(), ClientSteps(), {}
        self.lost_workers, self.late_workers, self.changes = [], [], []
        connected = [node for node in self.runner.clients.values() if node.state in CONNECTED_STATES]
        workers = sorted(connected, key=lambda node: self.runner.get_worker_index(node.id))
        self.assignments = {
            node.id: WorkerPart(node.id, len(workers), index, start_unix) for index, node in enumerate(workers)
        }
        for part in self.assignments.values():
            self._send_part(part)
        self._record_workers()
        log.info("schedule split over %d workers", len(workers))

    def stop_test(self) -> None:
        # The last worker's death stops the test before the watcher's next look: a missing worker is lost all
        # the same. (Absent ones are not: at a stop, workers leave the list and come back, all alive.)
        self.check_workers(stopping=True)
        self._unconfirmed_changes()

    def change_schedule(self, change: dict[str, Any]) -> None:
        """Send the change to every worker with a part; one counted lost is sent it when it reports again."""
        self.changes.append(change)
        for part in self.assignments.values():
            if part.lost is None:
                self._send_change(part, len(self.changes) - 1)

    def _send_change(self, part: WorkerPart, index: int) -> None:
        message = {"index": index, "change": self.changes[index], "start_unix": part.start_unix}
        self.runner.send_message(SCHEDULE_CHANGE_MESSAGE, message, client_id=part.worker)

    def _on_schedule_applied(self, environment: Environment, msg: Any, **_: Any) -> None:
        """A worker applied a change at run second `at_s`: after the change's start, its part of it started late."""
        part = self.assignments.get(msg.node_id)
        index, at_s = int(msg.data["index"]), float(msg.data["at_s"])
        if part is None or part.start_unix != msg.data["start_unix"] or index >= len(self.changes):
            return
        part.applied[index] = at_s
        label, start_s = self.engine.kind.describe_schedule_change(self.changes[index])
        if at_s <= start_s:
            return
        note = (
            f"Worker {part.worker} (part {part.index + 1} of {part.parts}) applied {label} at run second {at_s:.0f}, "
            f"{at_s - start_s:.1f} s after its start (it had missed heartbeats, or the step reached it late): of its "
            "part of that step, the arrivals due before then started late or were dropped (sessions.csv `late`, "
            "`dropped`), and the planned arrivals it had already taken on still started."
        )
        self._late_change(part.worker, at_s, note)

    def _unconfirmed_changes(self) -> None:
        """At the end: a worker with a part (not lost) that never said it applied a change is said late on it."""
        for part in self.assignments.values():
            if part.lost is not None:
                continue
            for index, change in enumerate(self.changes):
                if index in part.applied:
                    continue
                label, start_s = self.engine.kind.describe_schedule_change(change)
                note = (
                    f"Worker {part.worker} (part {part.index + 1} of {part.parts}) never confirmed {label} (from "
                    f"run second {start_s:.0f}): its part of that step may have replayed the planned arrivals instead."
                )
                self._late_change(part.worker, start_s, note)

    def _late_change(self, worker: str, at_s: float, note: str) -> None:
        self.late_workers.append({"worker": worker, "at_s": round(at_s, 1), "note": note})
        self._record_workers()
        log.warning("%s", note)

    def _send_part(self, part: WorkerPart) -> None:
        message = {"parts": part.parts, "index": part.index, "start_unix": part.start_unix}
        self.runner.send_message(ASSIGN_MESSAGE, {**message, "run": run_identity(self.engine)}, client_id=part.worker)

    def _on_ready(self, environment: Environment, msg: Any, **_: Any) -> None:
        part = self.assignments.get(msg.node_id)
        if part is not None and part.lost is None:  # the test started before this worker could hear its part
            self._send_part(part)

    def _on_refused(self, environment: Environment, msg: Any, **_: Any) -> None:
        part = self.assignments.get(msg.node_id)
        if part is not None and part.lost is None and part.start_unix == msg.data["start_unix"]:
            part.refused = msg.data["reason"]
            self._lose(part)
            self._record_workers()

    def _on_url_refused(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.engine.refuse(msg.data["reason"])

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        report = data.get(REPORT_KEY)
        if not report:
            return
        piece = Ledger.from_wire(report["ledger"])
        part = self.assignments.get(client_id)
        if part is not None:
            if part.lost is not None and part.refused is None:
                self._found(part)
            part.hear(piece)
        self.merged.merge(piece)
        self.merged_steps.merge(ClientSteps.from_json(report.get("client_steps", {})))
        waiting, active, remaining, loaded = report["status"]
        self.worker_status[client_id] = FleetStatus(waiting, active, remaining, loaded)

    # ---- lost and late workers --------------------------------------------------------------------------

    def _watch_workers(self) -> None:
        while True:
            gevent.sleep(WATCH_EVERY_S)
            self.check_workers()

    def check_workers(self, stopping: bool = False) -> None:
        """During a test: a worker with a part that Locust marks missing (no heartbeat for a few seconds) or
        that left is lost; a worker connected without a part joined late."""
        if self.engine.share.start_unix is None or not self.assignments:
            return
        if not stopping and self.runner.state not in (STATE_SPAWNING, STATE_RUNNING):
            return
        changed = False
        for part in self.assignments.values():
            node = self.runner.clients.get(part.worker)
            gone = node.state == STATE_MISSING if node is not None else not stopping
            if part.lost is None and gone:
                self._lose(part)
                changed = True
        if not stopping:
            known = {record["worker"] for record in self.late_workers}
            for node in list(self.runner.clients.values()):
                if node.state in CONNECTED_STATES and node.id not in self.assignments and node.id not in known:
                    self._late(node.id)
                    changed = True
        if changed:
            self._record_workers()

    def _run_s(self) -> float:
        return self.engine.share.queue.run_seconds()

    def _clock(self, run_s: float) -> str:
        return seconds_to_clock(self.engine.context.replay.clock_at(run_s))

    def _lose(self, part: WorkerPart) -> None:
        """Count what the master had not heard started (or dropped) of the worker's part as lost, and what it
        had not heard scheduled as scheduled, so every arrival of the run stays accounted for."""
        arrivals = self.engine.kind.part_arrival_times(part.parts, part.index)  # as the schedule's changes left it
        due = Ledger()
        for at_s in arrivals.tolist():
            due.count(at_s, Counter.SCHEDULED)
        counted = Ledger()
        for second, bucket in due.seconds.items():
            scheduled = bucket.counters[Counter.SCHEDULED]
            heard = part.heard.seconds[second].counters if second in part.heard.seconds else {}
            if scheduled > heard.get(Counter.SCHEDULED, 0):
                counted.count(second, Counter.SCHEDULED, scheduled - heard.get(Counter.SCHEDULED, 0))
            never = scheduled - heard.get(Counter.STARTED, 0) - heard.get(Counter.DROPPED, 0)
            if never > 0:
                counted.count(second, Counter.LOST, never)
        part.lost = counted
        self.merged.merge(counted)
        self.worker_status.pop(part.worker, None)  # its agents no longer wait for anyone
        at_s = self._run_s()
        lost = counted.total(Counter.LOST)
        heard_s = None if part.last_report_unix is None else part.last_report_unix - part.start_unix
        last = "it never reported" if heard_s is None else f"its last report came at {heard_s:.0f} s"
        if part.refused is not None:
            last = f"it refused its part: {part.refused}"
        note = (
            f"Worker {part.worker} (part {part.index + 1} of {part.parts}) was lost at run second {at_s:.0f} "
            f"({self._clock(at_s)}; {last}): {lost} of its {len(arrivals)} arrivals were not known to have "
            "started and are counted as lost (sessions.csv `lost`); the run went on without them."
        )
        self.lost_workers.append(
            {
                "worker": part.worker,
                "part": f"{part.index + 1}/{part.parts}",
                "at_s": round(at_s, 1),
                "last_report_s": None if heard_s is None else round(heard_s, 1),
                "arrivals": len(arrivals),
                "arrivals_lost": lost,
                "note": note,
            }
        )
        log.warning("%s", note)

    def _found(self, part: WorkerPart) -> None:
        """A worker counted lost reports again (it had only missed heartbeats): its part was not lost."""
        assert part.lost is not None
        undo = Ledger()
        for second, bucket in part.lost.seconds.items():
            for name, amount in bucket.counters.items():
                undo.count(second, name, -amount)
        self.merged.merge(undo)
        part.lost = None
        self.lost_workers = [record for record in self.lost_workers if record["worker"] != part.worker]
        self._record_workers()
        log.warning("worker %s reports again: its part was not lost after all", part.worker)
        for index in range(len(self.changes)):  # the changes sent while it was counted lost
            if index not in part.applied:
                self._send_change(part, index)

    def _late(self, worker: str) -> None:
        at_s = self._run_s()
        note = (
            f"Worker {worker} joined at run second {at_s:.0f} ({self._clock(at_s)}), after the schedule was "
            f"split over the {len(self.assignments)} workers connected at the start: it took no part in the "
            "replay. Locust still gave it a share of the agent pool, which idled, and stopped as many agents on "
            "the other workers: people they were waiting for were not replayed, sessions they lived were cut short."
        )
        self.late_workers.append({"worker": worker, "at_s": round(at_s, 1), "note": note})
        log.warning("%s", note)

    def _record_workers(self) -> None:
        if self.engine.results is not None:
            self.engine.results.record_workers(self.lost_workers, self.late_workers)

    def ledger(self) -> Ledger:
        return self.merged

    def client_steps(self) -> ClientSteps:
        return self.merged_steps

    @property
    def processes(self) -> int:
        return len(self.assignments)

    def fleet_status(self) -> FleetStatus:
        total = FleetStatus()
        for status in self.worker_status.values():
            total.add(status)
        return total


class WorkerRole(Role):
    writes_results = False

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.runner: WorkerRunner = engine.environment.runner  # type: ignore[assignment]
        self.runner.register_message(ASSIGN_MESSAGE, self._on_assign)
        self.runner.register_message(SCHEDULE_CHANGE_MESSAGE, self._on_schedule_change)
        engine.environment.events.report_to_master.add_listener(self._on_report_to_master)
        self.runner.send_message(READY_MESSAGE)  # now that the handler is in place, ask for a part

    def _on_assign(self, environment: Environment, msg: Any, **_: Any) -> None:
        start_unix = msg.data["start_unix"]
        if self.engine.share.start_unix == start_unix:
            return  # the same part again (the ready handshake can deliver it twice)
        share = self.engine.new_share()
        ours, theirs = run_identity(self.engine), msg.data.get("run", {})
        differ = [
            f"{key} {ours.get(key)!r} here, {value!r} on the master"
            for key, value in theirs.items()
            if ours.get(key) != value
        ]
        if differ:  # its part would be other people at other times than the master counts
            reason = (
                f"this worker replays another run ({', '.join(differ)}); start it with the master's --scenario, "
                "--scale, --speed and --seed"
            )
            log.error("%s; quitting", reason)
            self.runner.send_message(REFUSED_MESSAGE, {"start_unix": start_unix, "reason": reason})
            gevent.spawn_later(1, self.runner.quit)  # once the message has left
            return
        size = share.assign(msg.data["parts"], msg.data["index"], start_unix)
        log.info("worker part %d/%d: %d arrivals", msg.data["index"] + 1, msg.data["parts"], size)

    def _on_schedule_change(self, environment: Environment, msg: Any, **_: Any) -> None:
        share = self.engine.share
        if not share.queue.loaded or share.start_unix != msg.data["start_unix"]:
            return  # a worker without a part (or with another test's) has nothing to change
        self.engine.kind.apply_schedule_change(msg.data["change"])
        applied = {"index": msg.data["index"], "start_unix": share.start_unix, "at_s": share.queue.run_seconds()}
        self.runner.send_message(SCHEDULE_APPLIED_MESSAGE, applied)

    def stop_refused(self, reason: str) -> None:
        # What this worker measured first, then why it stops: the master quits the test on the reason, and its
        # quit waits only half a second for the workers' last reports. (One message queue: they arrive in order.)
        self.runner._send_stats()  # Locust's own report, as its worker sends it every 3 s and when told to quit
        self.runner.send_message(URL_REFUSED_MESSAGE, {"reason": reason})

    def _on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        share = self.engine.share
        status = share.status()
        data[REPORT_KEY] = {
            "ledger": share.ledger.take().to_wire(),
            "client_steps": share.client_steps.take().to_json(),
            "status": [status.waiting, status.active, status.remaining, status.loaded],
        }


def run_identity(engine: Engine) -> dict[str, Any]:
    """What makes every process compute the same schedule: a worker whose identity differs from the master's
    would replay other people at other times, so it refuses its part."""
    replay = engine.context.replay
    return {
        "scenario": engine.context.scenario.name,
        "scale": replay.scale,
        "speed": replay.speed,
        "seed": engine.context.seed,
        "arrivals": len(engine.share.schedule),
    }


def role_for(engine: Engine) -> Role:
    """The role of the engine's Locust process, from its runner (created before the locustfile's init)."""
    runner = engine.environment.runner
    if isinstance(runner, MasterRunner):
        return MasterRole(engine)
    if isinstance(runner, WorkerRunner):
        return WorkerRole(engine)
    return LocalRole(engine)
