"""Capacity-loss incidents: at the scenario's clock times, tell the platform's admin endpoint how much
capacity it has lost (as a datacenter fire would), and give it back when the scenario says so. The calls go
through the run's guarded opener (engine/http.py), follow no redirect, and carry the admin token to the
target's origin only."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import gevent

from schoolsurge.engine.context import SurgeContext
from schoolsurge.engine.http import FetchFailed, GuardedOpener
from schoolsurge.models.incidents import capacity_timeline

ADMIN_CAPACITY_PATH = "/admin/capacity"
ADMIN_TIMEOUT_S = 10.0
ADMIN_MAX_BODY_BYTES = 64 << 10  # its answer is a few bytes of JSON, not read
log = logging.getLogger(__name__)


def set_capacity_lost(opener: GuardedOpener, base_url: str, token: str, fraction_lost: float) -> None:
    """One admin call; raises FetchFailed (an OSError) when the platform refuses, redirects or is unreachable."""
    opener.fetch(
        f"{base_url.rstrip('/')}{ADMIN_CAPACITY_PATH}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps({"fraction_lost": round(fraction_lost, 6)}).encode(),
        timeout_s=ADMIN_TIMEOUT_S,
        max_body_bytes=ADMIN_MAX_BODY_BYTES,
        limit_name="admin answer limit",
        max_redirects=0,  # a redirected POST would land as a GET elsewhere: a redirect is a failed call
    )


def drive_capacity_incidents(
    context: SurgeContext, opener: GuardedOpener, base_url: str | None, start_unix: Callable[[], float | None]
) -> list[dict[str, object]]:
    """Applies every change of the capacity timeline at its run second; returns what was done (also logged)."""
    changes = capacity_timeline(context.scenario, context.replay.speed)
    token = context.admin_token
    applied: list[dict[str, object]] = []
    if all(available == 1.0 for _, available in changes):
        return applied
    if token is None or not base_url:
        log.warning("the scenario loses capacity but no --admin-token (or no target) was given; incidents skipped")
        return applied
    for run_s, available in changes:
        started = start_unix()
        if started is None:
            return applied
        gevent.sleep(max(0.0, started + run_s - time.time()))
        lost = 1.0 - available
        try:
            set_capacity_lost(opener, base_url, token, lost)
            outcome = "applied"
        except FetchFailed as error:
            outcome = f"failed: {error}"
            log.error("capacity incident at run second %.0f %s", run_s, outcome)
        applied.append({"run_s": round(run_s, 1), "fraction_lost": round(lost, 4), "outcome": outcome})
        log.info("capacity lost %.0f%% at run second %.0f (%s)", lost * 100, run_s, outcome)
    return applied
