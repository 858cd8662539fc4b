"""The reference school platform: a single sign-on (CAS 3.0, or an OpenID Provider with `--sso oidc`), an ENT
JSON API, admission control and Prometheus metrics, in one ASGI app (one per worker process).

The endpoints live in routes/, one module-level router per journey; they reach the platform (database,
settings, metrics) through FastAPI dependencies on the app state (routes/dependencies.py). Endpoints are plain
`def` functions: FastAPI runs them in its thread pool, so bcrypt (which releases the GIL) and SQLite calls never
block the event loop. All state lives in SQLite, shared by the worker processes. The OpenAPI schema is served
at /openapi.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from schoolsurge.platform import db
from schoolsurge.platform.admission import AdmissionControl, AdmissionGate, CapacityState
from schoolsurge.platform.body_limit import BodyLimit
from schoolsurge.platform.core import Platform
from schoolsurge.platform.metrics import Metrics, RequestMetrics, RouteTemplates
from schoolsurge.platform.oidc_config import ProviderConfig
from schoolsurge.platform.oidc_provider import OidcProvider
from schoolsurge.platform.profile_limits import ProfileGates, ProfileLimits
from schoolsurge.platform.routes import cas, ent_auth, homework, oidc, ops, school, virtual_classes
from schoolsurge.platform.scheduling import probe_scheduling
from schoolsurge.platform.schemas import Error
from schoolsurge.platform.services import ServiceRegistry
from schoolsurge.platform.settings import Settings

# Documented on every operation, so a schema-driven client (and schemathesis) knows each error's body.
ERRORS = {
    code: {"model": Error, "description": text}
    for code, text in {
        400: "bad request",
        401: "not logged in, or session expired",
        403: "not for your role, or a CAS service that is not registered",
        404: "no such thing, or not yours to see",
        409: "conflicts with the current state (a virtual class that is full)",
        410: "gone: the virtual class has ended",
        413: "request body too large",
        422: "malformed request",
        429: "too many wrong passwords for this account: slowed down, see Retry-After",
        503: "overloaded (a profile limit: logins, requests or sessions; the admission queue; the database); "
        "see Retry-After",
    }.items()
}
# Threads a worker keeps beyond its request slots, for the operators' endpoints that bypass admission.
SPARE_THREADS = 4
# In this order in the schema, after the single sign-on's own (SSO_ROUTERS, by protocol); /metrics
# (ops.metrics_router) is included apart, guarded or not.
ENT_ROUTERS = (school.router, homework.router, virtual_classes.router, ops.router)
SSO_ROUTERS = {"cas": (cas.router, ent_auth.router), "oidc": (oidc.router, ent_auth.oidc_router)}


def _validation_message(exc: RequestValidationError) -> str:
    """One line naming the first problem; never echoes the input (it may be a password)."""
    errors = exc.errors()
    if not errors:
        return "malformed request"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid')}{more}"


def create_app(
    db_path: Path,
    settings: Settings | None = None,
    *,
    capacity_file: Path | None = None,
    admin_token_hash: str | None = None,
    services: ServiceRegistry | None = None,
    metrics_token_hash: str | None = None,
    oidc_provider: ProviderConfig | None = None,
) -> FastAPI:
    """Build one worker's app on an already seeded database file. Without `services`, no CAS service is
    registered (no ticket is ever issued); without `metrics_token_hash`, /metrics is open. With `settings.sso`
    "oidc", the app serves an OpenID Provider (`oidc_provider`: its issuer, key and clients) instead of CAS."""
    settings = settings or Settings()
    if settings.sso == "oidc" and oidc_provider is None:
        raise ValueError("an OpenID Connect platform needs its provider's configuration (oidc_config.py)")
    metrics = Metrics()
    capacity = CapacityState(capacity_file)
    platform = Platform(
        Path(db_path),
        settings,
        metrics,
        capacity,
        admin_token_hash,
        services=services or ServiceRegistry(),
        metrics_token_hash=metrics_token_hash,
    )

    gates = ProfileGates(settings, capacity, metrics, platform.live_sessions)
    routers = (*SSO_ROUTERS[settings.sso], *ENT_ROUTERS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The thread pool never needs more threads than the admission gate lets requests in.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.max_in_flight + SPARE_THREADS
        loop = asyncio.get_running_loop()
        background = [loop.create_task(metrics.record_cpu_periodically()), loop.create_task(probe_scheduling(metrics))]
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if gates.sessions is not None:
                gates.sessions.close()

    app = FastAPI(
        title="schoolsurge reference platform",
        version="2",
        description="A regional school ENT with CAS or OpenID Connect single sign-on, for rehearsing the 6 April "
        "2021 surge.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        responses=ERRORS,  # type: ignore[arg-type]
        lifespan=lifespan,
    )
    app.state.platform = platform  # what routes.dependencies.get_platform hands the endpoints
    if oidc_provider is not None and settings.sso == "oidc":
        app.state.oidc = OidcProvider(platform, oidc_provider)  # ... and get_oidc
    for router in routers:
        app.include_router(router)
    # Guarded only when a metrics token is configured, so the schema says what the server actually requires.
    metrics_guard = [Depends(ops.require_metrics_token)] if metrics_token_hash is not None else []
    app.include_router(ops.metrics_router, dependencies=metrics_guard)

    templates = RouteTemplates([route for router in (*routers, ops.metrics_router) for route in router.routes])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            # The router names only the first route on the path; list every method the path supports.
            exc.headers = {**(exc.headers or {}), "Allow": templates.allowed(request.url.path)}
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(sqlite3.OperationalError)
    async def database_busy(request: Request, exc: sqlite3.OperationalError) -> JSONResponse:
        # Lock waits past db_timeout are overload, not bugs: answer like an overloaded server would.
        if db.is_busy(exc):
            return JSONResponse(
                {"detail": "database busy, retry later"},
                status_code=503,
                headers={"Retry-After": str(settings.retry_after)},
            )
        raise exc

    @app.exception_handler(UnicodeEncodeError)
    async def not_unicode(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return JSONResponse({"detail": "text must be valid Unicode (no lone surrogates)"}, status_code=400)

    # Added last = outermost, so in the order a request meets them: metrics (they see shed and oversize
    # requests too), the body limit (before anything reads a body: no path and no credential check escapes
    # it), the profile's limits (rates and sessions, in national units scaled to the run: a request waiting
    # for a token holds no slot), then the machine's admission control (slots and queue), then the routes.
    app.add_middleware(AdmissionControl, gate=AdmissionGate(settings, capacity, metrics))
    app.add_middleware(ProfileLimits, gates=gates)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestMetrics, metrics=metrics, templates=templates)
    return app
