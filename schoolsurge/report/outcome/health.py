"""Was it the platform's capacity, or the machine, that bound? The generator's and the platform's health.

- Generator: arrivals that started late or were dropped mean the load generator could not keep the clock;
  then the run measured the generator, not the platform.
- A run the loopback guard stopped (a client asked for a URL it refuses; manifest status `refused`) measured
  only its first seconds: invalid too.
- A client that crashes (a step raised in the client: sessions.csv `client_errors`, client_steps.json) cut those
  people's journeys: said first, and when it cut more than CLIENT_BROKEN_LIMIT of the journeys that started, the
  run is invalid: the client is broken (it measured the client's bug, not the platform).
- People still waiting when the run ended (`unfinished`: the target had not answered them) are said first:
  they were not served, whatever the figures of those who were.
- Platform: the embedded platform counts the requests it refused by reason. `login_rate`, `request_rate` and
  `sessions_full` are its profile's limits (national capacity, scaled to the run): the rehearsal's outcome.
  `queue_full` and `queue_timeout` are the machine's (workers, slots, queue): when they bind, the run measured
  the laptop. Its CPU seconds over the run say how busy the machine was.
- The platform's process: each worker measures how late its event loop wakes and, on Linux, how long its loop's
  thread waited for a CPU (platform/scheduling.py). A worker that stalled or waited for a large share of the run
  was starved of CPU by the machine (other processes, a stopped process): its failures are the machine's.

A run is invalid (manifest `valid`, exit status 4) when it measured the generator (generator-bound) or the
machine the platform ran on (machine-bound: the platform's machine-level gate shed, or its process was
CPU-starved), rather than the platform's profile. `invalid_reason` is the one place that judges it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.files import read_regular_text, readable
from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import TARGET_METRICS, Counter, Manifest, RunStatus
from schoolsurge.rundir.metrics import (
    EVENT_LOOP_CPU,
    EVENT_LOOP_STALLED,
    MACHINE_REASONS,
    PLATFORM_CPU_SECONDS,
    PROFILE_REASONS,
    RUN_QUEUE_WAIT,
    SHED,
    WORKERS,
    total,
)

LATE_LIMIT = 0.01  # more than 1% of arrivals late or dropped: the generator did not keep the clock
SATURATED_LIMIT_S = 5  # process-seconds above 90% CPU tolerated (Locust samples its CPU every 5 s)
MACHINE_SHED_LIMIT = 0.01  # more than 1% of requests refused at the machine's limits
# A worker whose event loop is late by more than STALL_LAG_S answers nobody meanwhile. Stalled for more than 5% of
# the run, its stalls alone can make the 95th percentile of login times: the percentile measured the machine.
STALLED_LIMIT = 0.05
# Time the workers' loop threads were runnable but waited for a CPU, as a share of the run: it follows the machine's
# load and how busy the loops are. On this 2-core machine, others' work at load average ~15: 9-16% for the smoke run,
# 23% for five times its people (p95 300 ms); with `stress-ng --cpu 2` beside, 29% and p95 1,400 ms (74 ms alone):
# past a quarter of the run, the latencies measured the wait for a CPU rather than the platform.
RUN_QUEUE_WAIT_LIMIT = 0.25
# More than 10% of the journeys that started ended in a crash of the client (each crash ends one person's journey,
# so this is the share of people whose steps the client could not take): the client is broken.
CLIENT_BROKEN_LIMIT = 0.10
CLIENT_BROKEN = "the client is broken"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Health:
    arrivals: int = 0
    late: int = 0
    dropped: int = 0
    shed_by_reason: dict[str, float] = field(default_factory=dict)
    requests: int = 0
    platform_cpu_s: float | None = None
    run_s: float | None = None
    worker_notes: tuple[str, ...] = ()  # Locust workers lost or late (manifest, roles.py)
    saturated_s: int = 0  # process-seconds a Locust process spent above 90% CPU
    lost: int = 0  # arrivals of a Locust worker that died or left (never started)
    refused: str | None = None  # why the loopback guard stopped the run (manifest `stopped_by`), when it did
    unfinished: int = 0  # people still logging in when the run ended (sessions.csv `unfinished`)
    unfinished_page: int = 0  # people logged in, still waiting on a page then (`unfinished_page`)
    drain_limit_s: float | None = None  # the drain limit that ended a completed morning (manifest), if known
    platform_process: PlatformProcessHealth | None = None  # how the machine let the platform's workers run
    started: int = 0  # people whose journey started (sessions.csv `started`)
    client_errors: int = 0  # journeys a crash of the client ended (`client_errors`)
    client_errors_login: int = 0  # of those, while logging in: not served (`client_errors_login`)
    first_crash: str = ""  # the most frequent: "KeyError 'role' in dashboard at reference.py:49 in dashboard, ..."

    @property
    def late_share(self) -> float:
        return (self.late + self.dropped + self.lost) / self.arrivals if self.arrivals else 0.0

    @property
    def generator_bound(self) -> bool:
        """The run is invalid: a generator was saturated, or more than 1% of arrivals did not start on time."""
        return self.late_share > LATE_LIMIT or self.saturated_s > SATURATED_LIMIT_S

    @property
    def crash_share(self) -> float:
        """The share of the journeys that started which a crash of the client ended."""
        return self.client_errors / self.started if self.started else 0.0

    @property
    def client_broken(self) -> bool:
        return self.refused is None and self.crash_share > CLIENT_BROKEN_LIMIT

    def crash_line(self) -> str | None:
        """What the client's crashes did, in one line (the console's and the report's top); None without any."""
        if not self.client_errors:
            return None
        login = self.client_errors_login
        not_served = f", {login:,} of them while logging in (not served)" if login else ""
        return (
            f"The client crashed in {self.client_errors:,} of {self.started:,} people's journeys "
            f"({self.crash_share:.0%}{not_served}): {self.first_crash}. Each crash is a failed step (in the error "
            "ratio) that ends the person's journey; tracebacks in locust.log and locust_exceptions.csv."
        )

    def invalid_reason(self) -> str | None:
        """Why the run cannot be trusted as a measure of the platform (None when it can): the one judge of a
        run's validity (manifest, report, console, exit status)."""
        if self.refused is not None:
            return f"{REFUSED_PREFIX}: {self.refused}"
        if self.client_broken:
            return (
                f"{CLIENT_BROKEN}: it crashed in {self.crash_share:.0%} of the journeys (more than "
                f"{CLIENT_BROKEN_LIMIT:.0%}), {self.first_crash}"
            )
        if self.generator_bound:
            return self._generator_reason()
        machine = self.machine_reasons()
        if machine:
            return f"{MACHINE_BOUND}: " + ", ".join(machine)
        return None

    def _generator_reason(self) -> str:
        reasons = []
        if self.late_share > LATE_LIMIT:
            reasons.append(
                f"{self.late + self.dropped + self.lost:,} of {self.arrivals:,} arrivals late, dropped or lost"
            )
        if self.saturated_s > SATURATED_LIMIT_S:
            reasons.append(f"a Locust process above 90% CPU for {self.saturated_s} s")
        return f"{GENERATOR_BOUND}: " + ", ".join(reasons)

    @property
    def shed_by_machine(self) -> float:
        return sum(v for k, v in self.shed_by_reason.items() if k in MACHINE_REASONS)

    @property
    def shed_by_profile(self) -> float:
        return sum(v for k, v in self.shed_by_reason.items() if k in PROFILE_REASONS)

    @property
    def machine_bound(self) -> bool:
        return bool(self.machine_reasons())

    def machine_reasons(self) -> list[str]:
        """Why the platform's side measured the machine: its machine-level gate shed, or its process starved."""
        reasons = []
        if self.requests > 0 and self.shed_by_machine / self.requests > MACHINE_SHED_LIMIT:
            reasons.append(
                f"{self.shed_by_machine:,.0f} of {self.requests:,} requests refused at the platform's machine-level "
                "gate (queue full or timed out)"
            )
        process = self.platform_process
        if process is not None and self.run_s:
            worker_s = process.workers * self.run_s
            if process.stalled_s / worker_s > STALLED_LIMIT:
                reasons.append(
                    f"the platform's event loops stalled {process.stalled_s:,.1f} s of {worker_s:,.0f} worker-seconds "
                    f"(over {STALLED_LIMIT:.0%}: its process was stopped or starved of CPU)"
                )
            if process.run_queue_wait_s is not None and process.run_queue_wait_s / worker_s > RUN_QUEUE_WAIT_LIMIT:
                reasons.append(
                    f"the platform's event loops waited {process.run_queue_wait_s:,.1f} s of {worker_s:,.0f} "
                    f"worker-seconds for a CPU (over {RUN_QUEUE_WAIT_LIMIT:.0%}: other processes had it)"
                )
        return reasons

    def notes(self) -> list[str]:
        """What a reader must know before believing the figures, first."""
        notes = []
        reason = self.invalid_reason()
        if self.refused is not None:
            notes.append(
                f"INVALID RUN ({reason}). Nothing was sent there; the figures are what was measured until the "
                "run stopped. Allow the host with --allow-host only if you own it, or fix the client's options."
            )
        elif self.client_broken:
            notes.append(
                f"INVALID RUN ({reason}): this run measured a bug of the client, not the platform. Fix the client "
                "(or its options, its journey map) and run again."
            )
        elif reason is not None and self.generator_bound:
            notes.append(
                f"INVALID RUN ({reason}): this run measured the load generator, not the platform. Use fewer "
                "people (--scale), a slower clock (--speed) or more Locust processes (--processes)."
            )
        elif reason is not None:
            notes.append(
                f"INVALID RUN ({reason}): this run measured the machine the platform ran on, not the platform's "
                "profile: its failures are not the profile's. Run it on a machine with CPU to spare (nothing else "
                "busy), give the platform more workers, or use fewer people (--scale)."
            )
        crashes = self.crash_line()
        if crashes is not None:
            notes.append(crashes)
        if self.unfinished or self.unfinished_page:
            page = self.unfinished_page
            on_a_page = f", and {page:,} logged in were waiting on a page" if page else ""
            notes.append(
                f"When the run ended, {self.unfinished:,} people were still logging in{on_a_page} (sessions.csv "
                "`unfinished`, `unfinished_page`): waiting for an answer the target had not given, or to ask "
                "again. Those logging in were not served: the served share and the login objectives count them "
                "as never logged in. Every request still unanswered then counts as failed (a timeout)."
                + self._drain_limit_said()
            )
        return [*notes, *self.worker_notes]

    def _drain_limit_said(self) -> str:
        if self.drain_limit_s is None:
            return ""
        return f" The drain limit ended the test {self.drain_limit_s:g} s after the window (--drain-limit)."

    def lines(self) -> list[tuple[str, str]]:
        rows = [("arrivals late / dropped (generator)", f"{self.late:,} / {self.dropped:,} of {self.arrivals:,}")]
        if self.client_errors:
            rows.append(
                (
                    "journeys ended by a crash of the client",
                    f"{self.client_errors:,} of {self.started:,} ({self.crash_share:.1%}; invalid above "
                    f"{CLIENT_BROKEN_LIMIT:.0%}): {self.first_crash}",
                )
            )
        if self.shed_by_reason:
            by_reason = ", ".join(f"{reason} {count:,.0f}" for reason, count in sorted(self.shed_by_reason.items()))
            rows.append(("requests refused by the platform, by reason", by_reason))
        if self.platform_cpu_s is not None and self.run_s:
            rows.append(
                (
                    "platform CPU",
                    f"{self.platform_cpu_s:,.0f} s over {self.run_s:,.0f} s of run "
                    f"({self.platform_cpu_s / self.run_s:.2f} cores on average)",
                )
            )
        if self.platform_process is not None:
            rows.append(("platform's process (event loops)", self.platform_process.line()))
        return rows


MACHINE_BOUND = "machine-bound"
GENERATOR_BOUND = "generator-bound"
REFUSED_PREFIX = "stopped by the loopback guard"


def measured_instead(reason: str) -> str:
    """What an invalid run measured instead of the platform, from its invalid reason."""
    if reason.startswith(MACHINE_BOUND):
        return "the machine the platform ran on"
    if reason.startswith(CLIENT_BROKEN):
        return "a bug of the client"
    if reason.startswith(REFUSED_PREFIX):
        return "only its first seconds, until the loopback guard stopped it"
    return "the load generator"


def invalid_line(reason: str) -> str:
    """The line an invalid run says first in its answer (or last on the console without one)."""
    return f"INVALID RUN ({reason}): it measured {measured_instead(reason)}, not the platform"


@dataclass(frozen=True)
class PlatformProcessHealth:
    """How the machine let the platform's workers run, summed over them (platform/scheduling.py)."""

    workers: int
    stalled_s: float  # lateness of the event loops' wakeups past the stall threshold
    loop_cpu_s: float | None  # the loops' threads on a CPU (Linux)
    run_queue_wait_s: float | None  # the loops' threads runnable, waiting for a CPU (Linux)

    def line(self) -> str:
        waited = ""
        if self.run_queue_wait_s is not None and self.loop_cpu_s is not None:
            waited = f"; waited {self.run_queue_wait_s:,.1f} s for a CPU, ran {self.loop_cpu_s:,.1f} s"
        return f"{self.workers} workers: stalled {self.stalled_s:,.1f} s{waited}"


def health(data: RunData) -> Health:
    arrivals = late = dropped = saturated = lost = unfinished = unfinished_page = 0
    journeys = client_errors = client_errors_login = 0
    if data.sessions is not None:
        arrivals = int(data.sessions[Counter.SCHEDULED].sum())
        late = int(data.sessions[Counter.LATE].sum())
        dropped = int(data.sessions[Counter.DROPPED].sum())
        saturated = int(data.sessions[Counter.GENERATOR_SATURATED_S].sum())
        lost = int(data.sessions[Counter.LOST].sum())
        journeys = int(data.sessions[Counter.STARTED].sum())
        client_errors = int(data.sessions[Counter.CLIENT_ERRORS].sum())
        client_errors_login = int(data.sessions[Counter.CLIENT_ERRORS_LOGIN].sum())
        if data.kind.counts_unfinished:
            unfinished = int(data.sessions[Counter.UNFINISHED].sum())
            unfinished_page = int(data.sessions[Counter.UNFINISHED_PAGE].sum())
    shed, cpu, process = _platform_figures(data)
    requests, _ = data.requests_in(None)
    ended, started = data.manifest.ended_unix, data.test_start_unix
    run_s = ended - started if ended is not None and started else None
    return Health(
        arrivals,
        late,
        dropped,
        shed,
        requests,
        cpu,
        run_s,
        data.manifest.worker_notes,
        saturated,
        lost,
        refused=run_refused(data.manifest),
        unfinished=unfinished,
        unfinished_page=unfinished_page,
        drain_limit_s=data.manifest.drain_limit_s if data.manifest.status is RunStatus.COMPLETED else None,
        platform_process=process,
        started=journeys,
        client_errors=client_errors,
        client_errors_login=client_errors_login,
        first_crash=_first_crash(data),
    )


def _first_crash(data: RunData) -> str:
    """The client's most frequent crash, as client_steps.json records it."""
    crashes = data.client_steps.crashes_by_count()
    if not crashes:
        return "a step raised in the client (client_steps.json missing)"
    step, error, crash = crashes[0]
    where = f" at {crash.where}" if crash.where else ""
    more = f" (and {len(crashes) - 1} other kinds)" if len(crashes) > 1 else ""
    return f"{error} in {step}{where}, first for {crash.username}{more}"


def run_refused(manifest: Manifest) -> str | None:
    """Why the loopback guard stopped the run, when it did (manifest status `refused`, `stopped_by`)."""
    if manifest.status != RunStatus.REFUSED:
        return None
    return manifest.stopped_by or "a URL a client asked for"


def refused_line(reason: str, run_dir: Path) -> str:
    """The one line a run the loopback guard stopped prints (schoolsurge run, or plain locust)."""
    return (
        f"schoolsurge: the loopback guard stopped the run: {reason}. Nothing was sent there; what was measured "
        f"until then is in {run_dir} (an invalid run)"
    )


PROCESS_SAMPLES = {
    WORKERS: "workers",
    total(EVENT_LOOP_STALLED): "stalled_s",
    total(EVENT_LOOP_CPU): "loop_cpu_s",
    total(RUN_QUEUE_WAIT): "run_queue_wait_s",
}


def _platform_figures(data: RunData) -> tuple[dict[str, float], float | None, PlatformProcessHealth | None]:
    """Shed requests by reason, CPU seconds and how the workers were let run, from the target's metrics scraped
    at the end of the run (the embedded platform's; another target has none of the workers' figures)."""
    path = data.run_dir / TARGET_METRICS
    if not readable(path, data.notes):
        return {}, None, None
    shed: dict[str, float] = {}
    cpu = None
    process: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(read_regular_text(path, errors="replace")):
            for sample in family.samples:
                if sample.name == total(SHED):
                    reason = sample.labels.get("reason", "?")
                    shed[reason] = shed.get(reason, 0.0) + sample.value
                elif sample.name == total(PLATFORM_CPU_SECONDS):
                    cpu = (cpu or 0.0) + sample.value
                elif sample.name in PROCESS_SAMPLES:
                    field_name = PROCESS_SAMPLES[sample.name]
                    process[field_name] = process.get(field_name, 0.0) + sample.value
    except (ValueError, OSError) as error:  # a malformed exposition: the report notes nothing rather than failing
        log.warning("%s: not Prometheus text (%s)", path, error)
        return {}, None, None
    platform_process = None
    if process.get("workers") and "stalled_s" in process:
        platform_process = PlatformProcessHealth(
            int(process["workers"]), process["stalled_s"], process.get("loop_cpu_s"), process.get("run_queue_wait_s")
        )
    return {reason: count for reason, count in shed.items() if count}, cpu, platform_process
