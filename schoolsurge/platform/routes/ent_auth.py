"""The ENT's side of single sign-on, one router per protocol (app.py includes the one the platform serves):

- `router` (CAS): its service URL, where the browser lands with a service ticket. The ENT redeems the ticket and
  opens a session (an HttpOnly cookie, cookies.py).
- `oidc_router` (OpenID Connect): where a browser starts a login (sent on to the provider's authorization
  endpoint) and its callback, where it lands with a code; the ENT redeems the code and opens the same session
  (ent_oidc.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from schoolsurge.platform import cookies, ent_oidc, sso
from schoolsurge.platform.cas_responses import redirect
from schoolsurge.platform.core import Account
from schoolsurge.platform.oidc_config import ENT_CALLBACK_PATH
from schoolsurge.platform.routes.dependencies import OidcDep, PlatformDep
from schoolsurge.platform.schemas import Me
from schoolsurge.platform.security import normalize_service
from schoolsurge.platform.services import CALLBACK_PATH

router = APIRouter(tags=["single sign-on"])
oidc_router = APIRouter(tags=["single sign-on: OpenID Connect"])
OIDC_LOGIN_PATH = "/ent/auth/oidc/login"


def _me(account: Account) -> Me:
    return Me(username=account.username, role=account.role, display_name=account.display_name)


@router.get(CALLBACK_PATH, summary="The ENT redeems its ticket and opens a session (HttpOnly cookie)")
def auth_callback(platform: PlatformDep, response: Response, ticket: Annotated[str, Query(max_length=256)] = "") -> Me:
    # The ENT validates the ticket over the CAS back channel; here that is an in-process call. Which service the
    # ticket is for comes from the ticket itself and must be one of the ENT's own registered callbacks: never
    # from the Host or X-Forwarded-* headers, which whoever holds a ticket writes as they please.
    account, failure = sso.redeem_at_ent(platform, ticket)
    if account is None:
        raise HTTPException(401, f"ticket rejected: {failure}; log in again")
    cookie = platform.open_session(account)
    cookies.set_session(response, cookie, secure=platform.services.ent_over_https)
    return _me(account)


@oidc_router.get(
    OIDC_LOGIN_PATH,
    status_code=302,
    response_class=Response,
    responses={302: {"description": "to the provider's authorization endpoint, with the ENT's client id"}},
    summary="Log in to the ENT: to the OpenID Provider (state bound to this browser, nonce, PKCE S256)",
)
def oidc_login(request: Request, platform: PlatformDep, provider: OidcDep) -> Response:
    browser = cookies.ENT_OIDC_LOGIN.for_form(request)
    # The ENT's callback at the base URL this browser uses, if it is one of the registered ones. Only registered
    # URLs are ever sent: a forged Host header can only pick among them.
    here = normalize_service(str(request.base_url).rstrip("/") + ENT_CALLBACK_PATH)
    redirect_uri = here if here in provider.ent_redirect_uris else provider.ent_redirect_uris[0]
    response = redirect(ent_oidc.start_login(platform, provider, browser, redirect_uri))
    lifetime, secure = platform.settings.login_flow_ttl, platform.services.ent_over_https
    cookies.ENT_OIDC_LOGIN.set(response, browser, lifetime, secure=secure)
    return response


@oidc_router.get(
    ENT_CALLBACK_PATH,
    responses={401: {"description": "no session: an error from the provider, or a state or code refused"}},
    summary="The ENT redeems its code at the provider, verifies the ID token and opens a session (HttpOnly cookie)",
)
def oidc_callback(
    request: Request,
    platform: PlatformDep,
    provider: OidcDep,
    response: Response,
    code: Annotated[str, Query(max_length=512)] = "",
    state: Annotated[str, Query(max_length=512)] = "",
    error: Annotated[str | None, Query(max_length=64, description="the provider's refusal")] = None,
) -> Me:
    if error is not None or not code or not state:
        raise HTTPException(401, f"no code from the provider ({error or 'code and state are required'}); log in again")
    outcome = ent_oidc.finish_login(platform, provider, state, code, cookies.ENT_OIDC_LOGIN.of(request))
    if isinstance(outcome, ent_oidc.LoginRefused):
        raise HTTPException(401, f"login refused: {outcome.reason}; log in again")
    cookie = platform.open_session(outcome)
    secure = platform.services.ent_over_https
    cookies.set_session(response, cookie, secure=secure)
    cookies.ENT_OIDC_LOGIN.drop(response, secure=secure)  # this login is over
    return _me(outcome)
