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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.files import read_regular_text, readable
from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import TARGET_METRICS, Counter, Manifest, RunStatus
from schoolsurge.rundir.metrics import MACHINE_REASONS, PLATFORM_CPU_SECONDS, PROFILE_REASONS, SHED, total

LATE_LIMIT = 0.01  # more than 1% of arrivals late or dropped: the generator did not keep the clock
SATURATED_LIMIT_S = 5  # process-seconds above 90% CPU tolerated (Locust samples its CPU every 5 s)
MACHINE_SHED_LIMIT = 0.01  # more than 1% of requests refused at the machine's limits
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
        """Why the run cannot be trusted as a measure of the platform (None when it can)."""
        if self.refused is not None:
            return f"stopped by the loopback guard: {self.refused}"
        if self.client_broken:
            return (
                f"{CLIENT_BROKEN}: it crashed in {self.crash_share:.0%} of the journeys (more than "
                f"{CLIENT_BROKEN_LIMIT:.0%}), {self.first_crash}"
            )
        if not self.generator_bound:
            return None
        reasons = []
        if self.late_share > LATE_LIMIT:
            reasons.append(
                f"{self.late + self.dropped + self.lost:,} of {self.arrivals:,} arrivals late, dropped or lost"
            )
        if self.saturated_s > SATURATED_LIMIT_S:
            reasons.append(f"a Locust process above 90% CPU for {self.saturated_s} s")
        return "generator-bound: " + ", ".join(reasons)

    @property
    def shed_by_machine(self) -> float:
        return sum(v for k, v in self.shed_by_reason.items() if k in MACHINE_REASONS)

    @property
    def shed_by_profile(self) -> float:
        return sum(v for k, v in self.shed_by_reason.items() if k in PROFILE_REASONS)

    @property
    def machine_bound(self) -> bool:
        return self.requests > 0 and self.shed_by_machine / self.requests > MACHINE_SHED_LIMIT

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
        elif reason is not None:
            notes.append(
                f"INVALID RUN ({reason}): this run measured the load generator, not the platform. Use fewer "
                "people (--scale), a slower clock (--speed) or more Locust processes (--processes)."
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
            )
        if self.machine_bound:
            notes.append(
                f"This run measured the machine, not the platform's profile: {self.shed_by_machine:,.0f} requests "
                "were refused at the machine's own limits (queue full or timed out) rather than at the profile's "
                "national capacity. Give the platform more workers or run it on another machine."
            )
        return [*notes, *self.worker_notes]

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
        return rows


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
    shed, cpu = _platform_figures(data)
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


def _platform_figures(data: RunData) -> tuple[dict[str, float], float | None]:
    """Shed requests by reason and CPU seconds, from the target's metrics scraped at the end of the run."""
    path = data.run_dir / TARGET_METRICS
    if not readable(path, data.notes):
        return {}, None
    shed: dict[str, float] = {}
    cpu = None
    try:
        for family in text_string_to_metric_families(read_regular_text(path, errors="replace")):
            for sample in family.samples:
                if sample.name == total(SHED):
                    reason = sample.labels.get("reason", "?")
                    shed[reason] = shed.get(reason, 0.0) + sample.value
                elif sample.name == total(PLATFORM_CPU_SECONDS):
                    cpu = (cpu or 0.0) + sample.value
    except (ValueError, OSError) as error:  # a malformed exposition: the report notes nothing rather than failing
        log.warning("%s: not Prometheus text (%s)", path, error)
        return {}, None
    return {reason: count for reason, count in shed.items() if count}, cpu
