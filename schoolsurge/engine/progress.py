"""The progress line: every few seconds, where the run is (the morning's clock, a sweep's step: its kind says) and
how people fare. Its login p95 is Locust's current one, over the logins that ended in its last 10 s window (got
in or failed): a live reading, not the run's time to log in (rundir/figures.py), which the answer gives."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gevent

from schoolsurge.rundir import LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE, Counter

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

PROGRESS_EVERY_S = 10


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
    requests = stats.total.num_requests - login.num_requests
    failures = stats.total.num_failures - login.num_failures
    fail_pct = 100 * failures / requests if requests else 0.0
    return (
        f"[{clock}] pool {runner.user_count:4d} | in session {status.active:4d} | "
        f"arrived {ledger.total(Counter.STARTED)}/{ledger.total(Counter.SCHEDULED)} "
        f"(late {ledger.total(Counter.LATE)}, dropped {ledger.total(Counter.DROPPED)}) | "
        f"logins {ledger.total(Counter.LOGINS_SUCCEEDED)} ok, {ledger.total(Counter.ABANDONED)} gave up | "
        f"{stats.total.current_rps - login.current_rps:6.1f} req/s, {fail_pct:4.1f}% failed | "
        f"logins ended in the last 10 s: p95 {p95 if p95 is not None else '-'} ms"
    )


def report_progress(engine: Engine) -> None:
    while True:
        gevent.sleep(PROGRESS_EVERY_S)
        line = progress_line(engine)
        if line is not None:
            print(line, flush=True)
