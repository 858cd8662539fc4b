"""The progress line: every few seconds, where the run is (the morning's clock, a sweep's step: its kind says) and
how people fare. People's requests and failures are counted apart from the bots' (the attack incident's), whose
refusals are the platform's defence, not people's failures. Its login p95 is Locust's current one, over the logins
that ended in its last 10 s window (got in or failed): a live reading, not the run's time to log in
(rundir/figures.py), which the answer gives."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent

from schoolsurge.rundir import BOT_STEP_PREFIX, LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE, Counter

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

PROGRESS_EVERY_S = 10


@dataclass
class Traffic:
    """Requests of one side (people, bots) in Locust's statistics so far."""

    requests: int = 0
    failures: int = 0
    per_s: float = 0.0  # now

    def add(self, entry: Any) -> None:
        self.requests += entry.num_requests
        self.failures += entry.num_failures
        self.per_s += entry.current_rps

    @property
    def failed_percent(self) -> float:
        return 100 * self.failures / self.requests if self.requests else 0.0

    def text(self) -> str:
        return f"{self.per_s:6.1f} req/s, {self.failed_percent:4.1f}% failed"


def people_and_bots(stats: Any) -> tuple[Traffic, Traffic]:
    """People's requests (their steps that crashed in the client included: failed steps) and the bots', from
    Locust's statistics; the login flow's summary entries, one per person, are no requests."""
    people, bots = Traffic(), Traffic()
    for (name, method), entry in list(stats.entries.items()):
        if method != LOGIN_FLOW_TYPE:
            (bots if str(name).startswith(BOT_STEP_PREFIX) else people).add(entry)
    return people, bots


def progress_line(engine: Engine) -> str | None:
    """One line about the run so far, or None before the test has started."""
    runner = engine.environment.runner
    started = engine.share.start_unix
    if started is None or runner is None or runner.state not in ("running", "spawning"):
        return None
    ledger = engine.ledger()
    status = engine.fleet_status()
    clock = engine.kind.progress_clock(time.time() - started)
    stats = engine.environment.stats
    login = stats.get(LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE)
    p95 = login.get_current_response_time_percentile(0.95) if login.num_requests else None
    people, bots = people_and_bots(stats)
    bot_part = f"bots {bots.text()} | " if bots.requests else ""
    return (
        f"[{clock}] pool {runner.user_count:4d} | in session {status.active:4d} | "
        f"arrived {ledger.total(Counter.STARTED)}/{ledger.total(Counter.SCHEDULED)} "
        f"(late {ledger.total(Counter.LATE)}, dropped {ledger.total(Counter.DROPPED)}) | "
        f"logins {ledger.total(Counter.LOGINS_SUCCEEDED)} ok, {ledger.total(Counter.ABANDONED)} gave up | "
        f"people {people.text()} | {bot_part}"
        f"logins ended in the last 10 s: p95 {p95 if p95 is not None else '-'} ms"
    )


def report_progress(engine: Engine) -> None:
    while True:
        gevent.sleep(PROGRESS_EVERY_S)
        line = progress_line(engine)
        if line is not None:
            print(line, flush=True)
