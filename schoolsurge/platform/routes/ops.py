"""Operators' endpoints, outside admission control: health, Prometheus metrics, and the incident switch.

Two routers: `router` (health and the admin endpoints) and `metrics_router` (/metrics), which create_app
includes behind `require_metrics_token` only when a metrics token is configured, so the schema says what the
server actually requires.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from schoolsurge.platform.admission import remaining
from schoolsurge.platform.core import Platform
from schoolsurge.platform.metrics import GaugesAtScrape
from schoolsurge.platform.routes.dependencies import PlatformDep
from schoolsurge.platform.schemas import Capacity, CapacityChange, Status
from schoolsurge.platform.security import same_secret, token_hash
from schoolsurge.platform.settings import Settings
from schoolsurge.rundir.metrics import CPU_CORES, IN_FLIGHT_LIMIT, LOGIN_RATE_LIMIT, QUEUE_LIMIT

bearer = HTTPBearer(
    auto_error=False,
    description="the admin token written to DB.admin-token at start (or, for /metrics, the metrics token)",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
PROMETHEUS_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}
Gauges = Iterator[tuple[str, str, dict[tuple[str, ...], float], list[str]]]

router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])


def capacity_now(platform: Platform) -> Capacity:
    settings, lost = platform.settings, platform.capacity.fraction_lost()
    return Capacity(
        fraction_lost=lost,
        workers=settings.workers,
        max_in_flight_per_worker=settings.max_in_flight,
        in_flight_limit_per_worker=remaining(settings.max_in_flight, lost),
        queue_length_per_worker=settings.queue_length,
        queue_limit_per_worker=remaining(settings.queue_length, lost),
    )


def cpu_cores() -> int:
    """The cores this process may run on (its affinity), where the system says; else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gauges_at_scrape(platform: Platform) -> Gauges:
    """The figures that live in the database and in the capacity state, computed when scraped."""
    connection = platform.connection()
    yield "schoolsurge_active_sessions", "Sessions not yet expired", {(): platform.live_sessions()}, []
    by_status = dict(
        connection.execute(
            "SELECT status, COUNT(*) FROM virtual_classes WHERE status != 'closed' GROUP BY status"
        ).fetchall()
    )
    yield (
        "schoolsurge_active_virtual_classes",
        "Virtual classes not closed, by status",
        {(status,): by_status.get(status, 0) for status in ("scheduled", "open")},
        ["status"],
    )
    present = connection.execute(
        "SELECT COUNT(*) FROM vc_participants vp JOIN virtual_classes v ON v.id = vp.vc_id"
        " WHERE vp.left_at IS NULL AND v.status != 'closed'"
    ).fetchone()[0]
    yield "schoolsurge_virtual_class_participants", "Pupils in or waiting for a virtual class", {(): present}, []
    capacity = capacity_now(platform)
    yield (
        "schoolsurge_capacity_fraction_lost",
        "Share of capacity taken out by an incident",
        {(): capacity.fraction_lost},
        [],
    )
    yield "schoolsurge_workers", "Worker processes configured", {(): capacity.workers}, []
    yield CPU_CORES, "CPU cores the platform's processes may run on", {(): cpu_cores()}, []
    yield (
        IN_FLIGHT_LIMIT,
        "Requests that may be served at once, all workers",
        {(): capacity.in_flight_limit_per_worker * capacity.workers},
        [],
    )
    yield (
        QUEUE_LIMIT,
        "Requests that may wait for a slot, all workers",
        {(): capacity.queue_limit_per_worker * capacity.workers},
        [],
    )
    yield from profile_limit_gauges(platform.settings, capacity.fraction_lost)


def profile_limit_gauges(settings: Settings, fraction_lost: float) -> Gauges:
    """The profile's limits at the run's level (national x scale x speed), all workers, an incident's loss
    taken out of the rates; +Inf when the profile sets none. And the run the platform stands in for."""

    def limit(value: float | None, lost: float = 0.0) -> dict[tuple[str, ...], float]:
        return {(): math.inf if value is None else value * (1.0 - lost)}

    yield (
        LOGIN_RATE_LIMIT,
        "Logins per second the profile admits at this run's level, all workers (+Inf: unlimited)",
        limit(settings.run_login_rate, fraction_lost),
        [],
    )
    yield (
        "schoolsurge_request_rate_limit",
        "Requests per second the profile admits at this run's level, all workers (+Inf: unlimited)",
        limit(settings.run_request_rate, fraction_lost),
        [],
    )
    yield (
        "schoolsurge_sessions_limit",
        "Live sessions the profile holds at this run's level (+Inf: unlimited)",
        limit(settings.run_sessions),
        [],
    )
    yield (
        "schoolsurge_run_scale",
        "Share of the national population the platform stands in for",
        {(): settings.run_scale},
        [],
    )
    yield (
        "schoolsurge_run_speed",
        "How many times faster than the scenario's clock the run goes",
        {(): settings.run_speed},
        [],
    )


def require_admin(platform: PlatformDep, credentials: BearerCredentials) -> None:
    if credentials is None:
        raise HTTPException(401, "admin token required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
    expected = platform.admin_token_hash
    if expected is None or not same_secret(token_hash(credentials.credentials), expected):
        raise HTTPException(403, "wrong admin token")


def require_metrics_token(platform: PlatformDep, credentials: BearerCredentials) -> None:
    """The metrics token or the admin token, as a bearer (create_app adds this only when a token is set)."""
    if credentials is None:
        raise HTTPException(401, "metrics token required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"})
    given = token_hash(credentials.credentials)
    accepted = [known for known in (platform.metrics_token_hash, platform.admin_token_hash) if known is not None]
    matches = [same_secret(given, known) for known in accepted]  # every comparison runs: timing reveals nothing
    if not any(matches):
        raise HTTPException(403, "wrong metrics token")


@router.get("/healthz", summary="Liveness")
async def healthz() -> Status:
    return Status(status="ok")


@metrics_router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: PROMETHEUS_TEXT},
    summary="Prometheus (with --metrics-token: that token, or the admin token, as a bearer)",
)
def prometheus_metrics(platform: PlatformDep) -> PlainTextResponse:
    scrape_time = GaugesAtScrape(lambda: gauges_at_scrape(platform))
    return PlainTextResponse(platform.metrics.exposition(scrape_time), media_type=CONTENT_TYPE_LATEST)


@router.get("/admin/capacity", dependencies=[Depends(require_admin)], summary="Admin: capacity now")
def read_capacity(platform: PlatformDep) -> Capacity:
    return capacity_now(platform)


@router.post(
    "/admin/capacity",
    dependencies=[Depends(require_admin)],
    summary="Admin: take a fraction of capacity out (incident) or restore it (0)",
)
def change_capacity(platform: PlatformDep, body: CapacityChange) -> Capacity:
    platform.capacity.set_fraction_lost(body.fraction_lost)
    return capacity_now(platform)
