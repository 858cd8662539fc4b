"""The CAS server's endpoints, after the Apereo CAS Protocol 3.0 specification, relative to the CAS base /cas:

- GET /cas/login: the login form (a one-time execution token, bound to the browser by its login-flow cookie,
  cookies.py); `gateway` goes back to the service without a ticket (nobody has a single sign-on session here);
  `renew` changes nothing (credentials are always asked).
- POST /cas/login: checks credentials; 302 to the service with a one-time service ticket, the form again with
  an error (401) on wrong credentials or a form not from this browser (or used, or expired), a "logged in" page
  when no service was named; 429 while wrong passwords slow the account down (sso.py).
- GET /cas/validate (CAS 1.0), /cas/serviceValidate (2.0), /cas/p3/serviceValidate (3.0, with attributes):
  back-channel ticket validation, the ticket used up whatever the outcome.
- GET /cas/logout (3.0: to a registered `service`, else a "logged out" page), POST /cas/logout (JSON): end the
  ENT session.

Not served: proxy tickets (/proxy, /proxyValidate, /p3/proxyValidate; a pgtUrl fails validation), the
ticket-granting cookie (single sign-on sessions), Remember-Me, /samlValidate, single logout.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from schoolsurge.platform import cookies, sso
from schoolsurge.platform.cas_responses import (
    LOGIN_ERROR,
    RESPONSE_FORMATS,
    STALE_FORM,
    STALE_FORM_ERROR,
    UNREGISTERED_SERVICE,
    cas1_response,
    logged_in_page,
    logged_out_page,
    login_page,
    redirect,
    service_response,
    unregistered_service_page,
)
from schoolsurge.platform.core import Platform
from schoolsurge.platform.routes.dependencies import PlatformDep
from schoolsurge.platform.schemas import Error, Status
from schoolsurge.platform.security import normalize_service
from schoolsurge.platform.sso import Failure, Validation

MAX_URL = 2048
MAX_TICKET = 256  # CAS 3.0 section 3.1.1: services should take tickets of up to 256 characters
SERVICE_URL = r"^[hH][tT][tT][pP][sS]?://"  # CAS redirects only to web services

LoginService = Annotated[
    str | None,
    Query(max_length=MAX_URL, pattern=SERVICE_URL, description="where to go back, with a ticket; optional"),
]
Flag = Annotated[
    str | None, Query(max_length=16, description='set when not empty (as Apereo CAS reads it); "true" recommended')
]
ValidatedService = Annotated[str, Query(max_length=MAX_URL, description="the service the ticket was issued for")]
Ticket = Annotated[str, Query(max_length=MAX_TICKET, description="the service ticket, ST-...")]
ProxyCallback = Annotated[
    str | None,
    Query(alias="pgtUrl", max_length=MAX_URL, description="proxy callback: not supported, the validation fails"),
]
ResponseFormat = Annotated[
    str | None, Query(alias="format", max_length=16, description="XML (default) or JSON, any case")
]


def documented(description: str, *media_types: str, model: type | None = None) -> dict[str, Any]:
    """An OpenAPI response: text bodies of these media types (plus the model's JSON). A fresh dict each time:
    FastAPI writes the model's schema into the one it is given."""
    response: dict[str, Any] = {"description": description}
    if media_types:
        response["content"] = {media_type: {"schema": {"type": "string"}} for media_type in media_types}
    if model is not None:
        response["model"] = model
    return response


REFUSED_SERVICE = {
    403: documented(
        "the service is not registered: no ticket for it (an HTML page for browsers)", "text/html", model=Error
    )
}
VALIDATION_RESPONSES = {
    200: {
        "description": "serviceResponse: authenticationSuccess, or authenticationFailure with a CAS error code",
        "content": {
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},  # with format=JSON
        },
    },
    503: documented(
        "overloaded (see Retry-After): admission control (JSON), or INTERNAL_ERROR, the ticket store busy (a "
        "serviceResponse; the ticket is still unused)",
        "application/xml",
        model=Error,
    ),
}

router = APIRouter(prefix="/cas", tags=["single sign-on"])


def client_address(request: Request) -> str:
    """The client's address as uvicorn gives it: the socket's peer, or the X-Forwarded-For address a trusted
    proxy (FORWARDED_ALLOW_IPS, 127.0.0.1 by default) passes on. Only the per-address throttle reads it."""
    return request.client.host if request.client else ""


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def refuse_unregistered_service(request: Request) -> Response:
    """403: a page for a browser, JSON for anything else. Never echoes the service (it is attacker-chosen)."""
    if wants_html(request):
        return unregistered_service_page()
    return JSONResponse({"detail": UNREGISTERED_SERVICE}, status_code=403)


def login_form_page(request: Request, platform: Platform, service: str | None, error: str = "") -> Response:
    """A login form whose execution token only this browser can use: bound to its login-flow cookie, set (or
    renewed) with the page."""
    flow = cookies.CAS_LOGIN_FLOW.for_form(request)
    response = login_page(sso.start_login_flow(platform, flow), service, error=error)
    lifetime, secure = platform.settings.login_flow_ttl, platform.services.ent_over_https
    cookies.CAS_LOGIN_FLOW.set(response, flow, lifetime, secure=secure)
    return response


def refuse_stale_form(request: Request, platform: Platform, service: str | None) -> Response:
    """401 for an execution token unknown, used, expired or another browser's: a browser gets the form again
    (CAS 3.0: back to /login as a credential requestor), anything else JSON."""
    if wants_html(request):
        return login_form_page(request, platform, service, STALE_FORM_ERROR)
    return JSONResponse({"detail": STALE_FORM}, status_code=401)


def with_ticket(registered_service: str, ticket: str) -> str:
    separator = "&" if "?" in registered_service else "?"
    return f"{registered_service}{separator}ticket={ticket}"


def end_ent_session(platform: Platform, request: Request, response: Response) -> None:
    """Forget the ENT session of the request's cookie, if any, and tell the browser to drop the cookie. Read by
    hand, not declared: logging out is allowed without (or with an expired) session."""
    platform.end_session(request.cookies.get(cookies.SESSION_COOKIE))
    cookies.drop_session(response, secure=platform.services.ent_over_https)


# ---- /login ---------------------------------------------------------------------------------------------


@router.get(
    "/login",
    responses={
        200: documented("the login form", "text/html"),
        302: {"description": "gateway: back to the service, without a ticket"},
        **REFUSED_SERVICE,
    },
    summary="Login form (HTML) with a one-time execution token for this browser (a login-flow cookie); service "
    "optional, registered if given",
)
def login_form(
    request: Request,
    platform: PlatformDep,
    service: LoginService = None,
    renew: Flag = None,
    gateway: Flag = None,
) -> Response:
    # Before anything else: an unregistered service gets no form (and never will get a ticket).
    if service is not None and not platform.services.is_registered(service):
        return refuse_unregistered_service(request)
    if service is not None and gateway and not renew:  # set = not empty, as Apereo CAS reads them
        # CAS 3.0 section 2.1.1: without a single sign-on session (there are none here) and no non-interactive
        # login, gateway goes back to the service without a ticket. With renew, gateway is ignored.
        return redirect(normalize_service(service))
    return login_form_page(request, platform, service)


@router.post(
    "/login",
    status_code=302,
    response_class=RedirectResponse,
    summary="Check credentials; 302 to the (registered) service with a one-time ticket",
    responses={
        200: documented("no service was named: a page saying the credentials are accepted", "text/html"),
        302: {"description": "redirect to SERVICE?ticket=ST-..."},
        401: documented(
            "wrong credentials: the login form again with an error (HTML, a fresh execution token); a form unknown, "
            "used, expired or not from this browser (no matching login-flow cookie): the form again for a browser "
            "(Accept: text/html), else JSON",
            "text/html",
            model=Error,
        ),
        429: documented("wrong passwords slow this account down: retry after Retry-After", model=Error),
        **REFUSED_SERVICE,
    },
)
def login(
    request: Request,
    platform: PlatformDep,
    username: Annotated[str, Form(min_length=1, max_length=256)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    execution: Annotated[str, Form(min_length=1, max_length=256)],
    event_id: Annotated[Literal["submit"], Form(alias="_eventId", description="as Apereo CAS's form")] = "submit",
    # A form field is never null: "" (or none) is no service.
    service: Annotated[str, Form(max_length=MAX_URL, pattern=SERVICE_URL, description="optional")] = "",
) -> Response:
    # Before anything else: an unregistered service gets no ticket, and costs no hashing.
    if service and not platform.services.is_registered(service):
        return refuse_unregistered_service(request)
    now = time.time()
    # The cheap single-use check comes before bcrypt, so replayed (or another browser's) forms cost no hashing.
    if not sso.finish_login_flow(platform, execution, cookies.CAS_LOGIN_FLOW.of(request), now):
        return refuse_stale_form(request, platform, service or None)
    account_id = sso.check_credentials(platform, client_address(request), username, password)
    if account_id is None:
        # CAS 3.0 section 2.2.4: a failed login returns to /login as a credential requestor, with the error.
        return login_form_page(request, platform, service or None, LOGIN_ERROR)
    response: Response
    if not service:
        response = logged_in_page()
    else:
        # The canonical registered URL, not the raw input: the redirect goes exactly where registration allows.
        registered = normalize_service(service)
        response = redirect(with_ticket(registered, sso.issue_service_ticket(platform, account_id, registered, now)))
    cookies.CAS_LOGIN_FLOW.drop(response, secure=platform.services.ent_over_https)  # this flow is over
    return response


# ---- ticket validation ----------------------------------------------------------------------------------


@router.get(
    "/validate",
    response_class=Response,
    responses={
        200: documented('CAS 1.0: "yes\\nUSERNAME\\n" or "no\\n\\n"', "text/plain"),
        503: documented('overloaded (see Retry-After): JSON, or "no\\n\\n"', "text/plain", model=Error),
    },
    summary="CAS 1.0: redeem a service ticket once; plain text",
)
def validate(
    platform: PlatformDep, service: ValidatedService = "", ticket: Ticket = "", renew: Flag = None
) -> Response:
    # renew is always satisfied: every ticket comes from credentials just presented (no single sign-on).
    validation = sso.validate_service_ticket(platform, ticket, service)
    return cas1_response(validation, retry_after=platform.settings.retry_after)


def service_validation(
    platform: Platform,
    service: str,
    ticket: str,
    proxy_callback: str | None,
    response_format: str | None,
    *,
    with_attributes: bool,
) -> Response:
    chosen = (response_format or "XML").upper()
    retry_after = platform.settings.retry_after
    if chosen not in RESPONSE_FORMATS:
        unsupported = Validation.failed(Failure.INVALID_REQUEST, "format must be XML or JSON")
        return service_response(unsupported, with_attributes=False, response_format="XML", retry_after=retry_after)
    validation = sso.validate_service_ticket(platform, ticket, service, proxy_callback or "")
    return service_response(
        validation, with_attributes=with_attributes, response_format=chosen, retry_after=retry_after
    )


@router.get(
    "/serviceValidate",
    response_class=Response,
    responses=VALIDATION_RESPONSES,
    summary="CAS 2.0 back channel: redeem a service ticket once",
)
def service_validate(
    platform: PlatformDep,
    service: ValidatedService = "",
    ticket: Ticket = "",
    pgt_url: ProxyCallback = None,
    renew: Flag = None,
    response_format: ResponseFormat = None,
) -> Response:
    return service_validation(platform, service, ticket, pgt_url, response_format, with_attributes=False)


@router.get(
    "/p3/serviceValidate",
    response_class=Response,
    responses=VALIDATION_RESPONSES,
    summary="CAS 3.0 back channel: redeem a service ticket once; the account's attributes on success",
)
def service_validate_with_attributes(
    platform: PlatformDep,
    service: ValidatedService = "",
    ticket: Ticket = "",
    pgt_url: ProxyCallback = None,
    renew: Flag = None,
    response_format: ResponseFormat = None,
) -> Response:
    return service_validation(platform, service, ticket, pgt_url, response_format, with_attributes=True)


# ---- /logout --------------------------------------------------------------------------------------------


@router.get(
    "/logout",
    responses={
        200: documented("a page saying you are logged out", "text/html"),
        302: {"description": "back to the service named, when it is registered"},
    },
    summary="CAS 3.0 logout: end the ENT session, if any; then to a registered service, or a page",
)
def logout_page(
    request: Request,
    platform: PlatformDep,
    service: Annotated[str | None, Query(max_length=MAX_URL, description="where to go afterwards")] = None,
) -> Response:
    # CAS 3.0 section 2.3.2: only a registered service is redirected to; anything else gets the page.
    response: Response
    if service is not None and platform.services.is_registered(service):
        response = redirect(normalize_service(service))
    else:
        response = logged_out_page()
    end_ent_session(platform, request, response)
    return response


@router.post("/logout", summary="End the session, if any (needs no authentication); JSON")
def logout(request: Request, response: Response, platform: PlatformDep) -> Status:
    end_ent_session(platform, request, response)
    return Status(status="logged out")
