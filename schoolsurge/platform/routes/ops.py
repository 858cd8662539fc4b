"""Operators' endpoints, outside admission control: health, Prometheus metrics, and the incident switch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST

from schoolsurge.platform.admission import remaining
from schoolsurge.platform.core import Platform
from schoolsurge.platform.metrics import GaugesAtScrape
from schoolsurge.platform.schemas import Capacity, CapacityChange, Status
from schoolsurge.platform.security import same_secret, token_hash

bearer = HTTPBearer(
    auto_error=False,
    description="the admin token written to DB.admin-token at start (or, for /metrics, the metrics token)",
)
PROMETHEUS_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format"}


def router(p: Platform) -> APIRouter:
    api = APIRouter(tags=["operations"])
    cfg = p.settings

    def capacity() -> Capacity:
        lost = p.capacity.fraction_lost()
        return Capacity(
            fraction_lost=lost,
            workers=cfg.workers,
            max_in_flight_per_worker=cfg.max_in_flight,
            in_flight_limit_per_worker=remaining(cfg.max_in_flight, lost),
            queue_length_per_worker=cfg.queue_length,
            queue_limit_per_worker=remaining(cfg.queue_length, lost),
        )

    def from_database() -> Iterator[tuple[str, str, dict[tuple[str, ...], float], list[str]]]:
        c = p.conn()
        since = time.time() - cfg.session_idle
        sessions = c.execute("SELECT COUNT(*) FROM sessions WHERE last_seen > ?", (since,)).fetchone()[0]
        yield "schoolsurge_active_sessions", "Sessions not yet expired", {(): sessions}, []
        by_status = dict(
            c.execute(
                "SELECT status, COUNT(*) FROM virtual_classes WHERE status != 'closed' GROUP BY status"
            ).fetchall()
        )
        yield (
            "schoolsurge_active_virtual_classes",
            "Virtual classes not closed, by status",
            {(s,): by_status.get(s, 0) for s in ("scheduled", "open")},
            ["status"],
        )
        present = c.execute(
            "SELECT COUNT(*) FROM vc_participants vp JOIN virtual_classes v ON v.id = vp.vc_id"
            " WHERE vp.left_at IS NULL AND v.status != 'closed'"
        ).fetchone()[0]
        yield "schoolsurge_virtual_class_participants", "Pupils in or waiting for a virtual class", {(): present}, []
        now = capacity()
        yield (
            "schoolsurge_capacity_fraction_lost",
            "Share of capacity taken out by an incident",
            {(): now.fraction_lost},
            [],
        )
        yield "schoolsurge_workers", "Worker processes configured", {(): now.workers}, []
        yield (
            "schoolsurge_in_flight_limit",
            "Requests that may be served at once, all workers",
            {(): now.in_flight_limit_per_worker * now.workers},
            [],
        )
        yield (
            "schoolsurge_queue_limit",
            "Requests that may wait for a slot, all workers",
            {(): now.queue_limit_per_worker * now.workers},
            [],
        )

    scrape_time = GaugesAtScrape(from_database)

    def require_admin(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if credentials is None:
            raise HTTPException(
                401, "admin token required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"}
            )
        if p.admin_token_hash is None or not same_secret(token_hash(credentials.credentials), p.admin_token_hash):
            raise HTTPException(403, "wrong admin token")

    def require_metrics_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if credentials is None:
            raise HTTPException(
                401, "metrics token required: Authorization: Bearer TOKEN", {"WWW-Authenticate": "Bearer"}
            )
        given = token_hash(credentials.credentials)
        accepted = [h for h in (p.metrics_token_hash, p.admin_token_hash) if h is not None]
        matches = [same_secret(given, h) for h in accepted]  # every comparison runs: timing reveals nothing
        if not any(matches):
            raise HTTPException(403, "wrong metrics token")

    # Declared only when a metrics token is configured, so the schema says what the server actually requires.
    metrics_guard = [Depends(require_metrics_token)] if p.metrics_token_hash is not None else []

    @api.get("/healthz", summary="Liveness")
    async def healthz() -> Status:
        return Status(status="ok")

    @api.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: PROMETHEUS_TEXT},
        dependencies=metrics_guard,
        summary="Prometheus (with --metrics-token: that token, or the admin token, as a bearer)",
    )
    def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(p.metrics.exposition(scrape_time), media_type=CONTENT_TYPE_LATEST)

    @api.get("/admin/capacity", dependencies=[Depends(require_admin)], summary="Admin: capacity now")
    def read_capacity() -> Capacity:
        return capacity()

    @api.post(
        "/admin/capacity",
        dependencies=[Depends(require_admin)],
        summary="Admin: take a fraction of capacity out (incident) or restore it (0)",
    )
    def change_capacity(body: CapacityChange) -> Capacity:
        p.capacity.set_fraction_lost(body.fraction_lost)
        return capacity()

    return api
