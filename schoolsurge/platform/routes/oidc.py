"""The OpenID Provider's endpoints (`--sso oidc`), relative to the issuer BASE/oidc: OpenID Connect Core 1.0's
authorization code flow (with PKCE, RFC 7636), Discovery 1.0 and RP-Initiated Logout 1.0. The protocol's rules
are authlib's and oidc_provider.py's; what is here is HTTP.

- GET /oidc/.well-known/openid-configuration, GET /oidc/jwks: the provider's metadata and public keys.
- GET or POST /oidc/authorize: an authorization request; the login form (a one-time execution token bound to
  the browser by its `oidc_login_flow` cookie, the request's parameters as hidden fields). An unregistered
  client or redirect URI: 403, nothing sent back to it. Any other error: back to the client with `error`.
- POST /oidc/login: the form's credentials. Right: back to the redirect URI with a one-time code (bound to the
  client, the redirect URI and the PKCE challenge). Wrong: the form again (401). The same throttle, login-rate
  limit and metrics as CAS's POST /cas/login (sso.py, profile_limits.py).
- POST /oidc/token: a code and its PKCE verifier for an ID token and an access token (client_secret_basic,
  client_secret_post, or none for a public client).
- GET or POST /oidc/userinfo: the claims of an access token's account.
- GET or POST /oidc/logout: ends the ENT session, if any (an id_token_hint, if given, must be one of ours).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2AuthorizationCodeBearer

from schoolsurge.platform import cookies, sso
from schoolsurge.platform.cas_responses import LOGIN_ERROR, NO_STORE, STALE_FORM, STALE_FORM_ERROR, logged_out_page
from schoolsurge.platform.cas_responses import redirect as redirect_to
from schoolsurge.platform.core import Platform
from schoolsurge.platform.oidc_config import ISSUER_PATH
from schoolsurge.platform.oidc_provider import HttpRequest, OidcProvider, PlatformOAuth2Request, to_response, user_info
from schoolsurge.platform.oidc_responses import (
    UNREGISTERED_CLIENT,
    error_page,
    login_page,
    unregistered_client_page,
)
from schoolsurge.platform.routes.cas import client_address, documented, end_ent_session, wants_html
from schoolsurge.platform.routes.dependencies import OidcDep, PlatformDep
from schoolsurge.platform.schemas import Error, OAuthError

MAX_URL = 2048
MAX_VALUE = 512  # state, nonce, scope, client id...

router = APIRouter(prefix=ISSUER_PATH, tags=["single sign-on: OpenID Connect"])
# Documents that userinfo wants an access token from this provider's code flow (schema-driven clients then
# know the token endpoint mints credentials).
access_token = OAuth2AuthorizationCodeBearer(
    authorizationUrl=f"{ISSUER_PATH}/authorize", tokenUrl=f"{ISSUER_PATH}/token", auto_error=False
)

OAUTH_ERROR = {"model": OAuthError, "description": "an OAuth 2.0 error (RFC 6749 section 5.2)"}
REFUSED_CLIENT = {
    403: documented(
        "the client, or its redirect URI, is not registered: nothing is sent to it (an HTML page for browsers)",
        "text/html",
        model=Error,
    )
}
AUTHORIZATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: documented("the login form", "text/html"),
    302: {"description": "an error sent back to the client: REDIRECT_URI?error=...&state=..."},
    400: documented("a malformed request that cannot go back to the client (an HTML page for browsers)", "text/html")
    | {"model": OAuthError},
    **REFUSED_CLIENT,
}


# ---- the authorization request, as query parameters (GET) or form fields (POST) --------------------------


def _authorization(**parameters: str | None) -> dict[str, str]:
    return {name: value for name, value in parameters.items() if value is not None}


def authorization_query(
    client_id: Annotated[str, Query(max_length=MAX_VALUE)],
    redirect_uri: Annotated[str, Query(max_length=MAX_URL)],
    response_type: Annotated[str | None, Query(max_length=64, description="code")] = None,
    scope: Annotated[str | None, Query(max_length=MAX_VALUE, description="openid, and profile")] = None,
    state: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    nonce: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    code_challenge: Annotated[str | None, Query(max_length=MAX_VALUE, description="required: PKCE")] = None,
    code_challenge_method: Annotated[str | None, Query(max_length=16, description="S256")] = None,
    prompt: Annotated[str | None, Query(max_length=64, description="none or login")] = None,
    max_age: Annotated[str | None, Query(max_length=16)] = None,
    response_mode: Annotated[str | None, Query(max_length=16, description="query")] = None,
) -> dict[str, str]:
    return _authorization(**locals())


def authorization_form(
    # At least one character: a form field sent empty is no field at all.
    client_id: Annotated[str, Form(min_length=1, max_length=MAX_VALUE)],
    redirect_uri: Annotated[str, Form(min_length=1, max_length=MAX_URL)],
    response_type: Annotated[str | None, Form(max_length=64, description="code")] = None,
    scope: Annotated[str | None, Form(max_length=MAX_VALUE, description="openid, and profile")] = None,
    state: Annotated[str | None, Form(max_length=MAX_VALUE)] = None,
    nonce: Annotated[str | None, Form(max_length=MAX_VALUE)] = None,
    code_challenge: Annotated[str | None, Form(max_length=MAX_VALUE, description="required: PKCE")] = None,
    code_challenge_method: Annotated[str | None, Form(max_length=16, description="S256")] = None,
    prompt: Annotated[str | None, Form(max_length=64, description="none or login")] = None,
    max_age: Annotated[str | None, Form(max_length=16)] = None,
    response_mode: Annotated[str | None, Form(max_length=16, description="query")] = None,
) -> dict[str, str]:
    return _authorization(**locals())


QueryAuthorization = Annotated[dict[str, str], Depends(authorization_query)]
FormAuthorization = Annotated[dict[str, str], Depends(authorization_form)]


# ---- answers --------------------------------------------------------------------------------------------


def oauth_error(request: Request, error: OAuth2Error) -> Response:
    """An error as RFC 6749 has it: back to the client when its redirect URI is known, else to the person (an
    HTML page for a browser, the JSON error otherwise)."""
    status, body, headers = error()
    if status == 302 or not wants_html(request):
        return to_response(status, body, headers)
    return error_page(error.error, error.get_error_description() or "", status)


def refuse_unregistered_client(request: Request) -> Response:
    if wants_html(request):
        return unregistered_client_page()
    return JSONResponse({"detail": UNREGISTERED_CLIENT}, status_code=403)


def authorization_request(request: Request, authorization: dict[str, str]) -> HttpRequest:
    """The request as authlib reads it: a GET's query as it came (a parameter given twice is an error), a POST's
    form fields."""
    if request.method == "GET":
        return HttpRequest.of(request)
    return HttpRequest("POST", str(request.url), request.headers, form=authorization)


def is_registered(provider: OidcProvider, authorization: dict[str, str]) -> bool:
    client = provider.clients.get(authorization["client_id"])
    return client is not None and client.check_redirect_uri(authorization["redirect_uri"])


def login_form_page(request: Request, platform: Platform, authorization: dict[str, str], error: str = "") -> Response:
    """A login form whose execution token only this browser can use (its login-flow cookie, set or renewed)."""
    flow = cookies.OIDC_LOGIN_FLOW.for_form(request)
    response = login_page(sso.start_login_flow(platform, flow), authorization, error=error)
    lifetime, secure = platform.settings.login_flow_ttl, platform.services.ent_over_https
    cookies.OIDC_LOGIN_FLOW.set(response, flow, lifetime, secure=secure)
    return response


def authorization_page(
    request: Request, platform: Platform, provider: OidcProvider, authorization: dict[str, str]
) -> Response:
    # Before anything else: nothing, not even an error, goes to a client or redirect URI not registered.
    if not is_registered(provider, authorization):
        return refuse_unregistered_client(request)
    try:
        provider.server.get_consent_grant(authorization_request(request, authorization))
    except OAuth2Error as error:
        return oauth_error(request, error)
    return login_form_page(request, platform, authorization)


# ---- metadata -------------------------------------------------------------------------------------------


@router.get("/.well-known/openid-configuration", summary="OpenID Connect Discovery 1.0: the provider's metadata")
def discovery(provider: OidcDep) -> dict[str, Any]:
    return provider.discovery()


@router.get("/jwks", summary="The provider's public keys (JWK Set): ID tokens are signed RS256 by one of them")
def jwks(provider: OidcDep) -> dict[str, Any]:
    return provider.jwks


# ---- authorization --------------------------------------------------------------------------------------


@router.get(
    "/authorize",
    response_class=Response,
    responses=AUTHORIZATION_RESPONSES,
    summary="Authorization request (code flow, PKCE S256 required): the login form for this browser",
)
def authorize(
    request: Request, platform: PlatformDep, provider: OidcDep, authorization: QueryAuthorization
) -> Response:
    return authorization_page(request, platform, provider, authorization)


@router.post(
    "/authorize",
    response_class=Response,
    responses=AUTHORIZATION_RESPONSES,
    summary="Authorization request as a form (OpenID Connect Core 3.1.2.1): the login form for this browser",
)
def authorize_by_form(
    request: Request, platform: PlatformDep, provider: OidcDep, authorization: FormAuthorization
) -> Response:
    return authorization_page(request, platform, provider, authorization)


@router.post(
    "/login",
    response_class=Response,
    status_code=302,
    responses={
        302: {"description": "REDIRECT_URI?code=...&state=... (or ?error=...&state=...)"},
        400: AUTHORIZATION_RESPONSES[400],
        401: documented(
            "wrong credentials: the login form again (HTML); a form unknown, used, expired or not from this "
            "browser (no matching login-flow cookie): the form again for a browser (Accept: text/html), else JSON",
            "text/html",
            model=Error,
        ),
        429: documented("wrong passwords slow this account down: retry after Retry-After", model=Error),
        **REFUSED_CLIENT,
    },
    summary="Check the login form's credentials; 302 to the client's redirect URI with a one-time code",
)
def login(
    request: Request,
    platform: PlatformDep,
    provider: OidcDep,
    username: Annotated[str, Form(min_length=1, max_length=256)],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    execution: Annotated[str, Form(min_length=1, max_length=256)],
    authorization: FormAuthorization,
) -> Response:
    if not is_registered(provider, authorization):
        return refuse_unregistered_client(request)
    try:  # the request is checked again, before any hashing: the form's hidden fields came back from the browser
        grant = provider.server.get_consent_grant(authorization_request(request, authorization))
    except OAuth2Error as error:
        return oauth_error(request, error)
    # The cheap single-use check comes before bcrypt, so replayed (or another browser's) forms cost no hashing.
    if not sso.finish_login_flow(platform, execution, cookies.OIDC_LOGIN_FLOW.of(request), time.time()):
        if wants_html(request):
            return login_form_page(request, platform, authorization, STALE_FORM_ERROR)
        return JSONResponse({"detail": STALE_FORM}, status_code=401)
    account_id = sso.check_credentials(platform, client_address(request), username, password)
    account = platform.account_by_id(account_id) if account_id is not None else None
    if account is None:
        return login_form_page(request, platform, authorization, LOGIN_ERROR)
    response = provider.server.create_authorization_response(grant.request, grant_user=account, grant=grant)
    response.headers.update(NO_STORE)
    cookies.OIDC_LOGIN_FLOW.drop(response, secure=platform.services.ent_over_https)  # this flow is over
    return response


# ---- token, userinfo ------------------------------------------------------------------------------------


@router.post(
    "/token",
    response_class=JSONResponse,
    responses={
        200: {"description": "access_token, token_type Bearer, expires_in, scope and id_token (a signed JWT)"},
        400: OAUTH_ERROR,
        401: OAUTH_ERROR,
    },
    summary="Redeem a code (once) with its PKCE verifier: an ID token and an access token",
)
def token(
    request: Request,
    provider: OidcDep,
    grant_type: Annotated[str | None, Form(max_length=64, description="authorization_code")] = None,
    code: Annotated[str | None, Form(max_length=MAX_VALUE)] = None,
    redirect_uri: Annotated[str | None, Form(max_length=MAX_URL)] = None,
    code_verifier: Annotated[str | None, Form(max_length=MAX_VALUE)] = None,
    client_id: Annotated[str | None, Form(max_length=MAX_VALUE, description="client_secret_post, none")] = None,
    client_secret: Annotated[str | None, Form(max_length=MAX_VALUE, description="client_secret_post")] = None,
) -> Response:
    form = {
        "grant_type": grant_type,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    try:
        return provider.server.create_token_response(HttpRequest.of(request, form))
    except OAuth2Error as error:  # an insecure transport, before authlib's own error handling
        return to_response(*error())


USERINFO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the account's claims: sub (the username), name and preferred_username with profile"},
    401: OAUTH_ERROR | {"description": "no access token, or not a valid one (WWW-Authenticate says why)"},
    403: OAUTH_ERROR | {"description": "the access token's scope has no openid"},
}


def _userinfo(request: Request, provider: OidcProvider) -> Response:
    try:
        access = provider.resource_protector.validate_request(
            ["openid"], PlatformOAuth2Request(HttpRequest.of(request))
        )
    except OAuth2Error as error:
        return to_response(*error())
    return JSONResponse(user_info(access.account, access.scope), headers=NO_STORE)


@router.get("/userinfo", response_class=JSONResponse, responses=USERINFO_RESPONSES, summary="The access token's claims")
def userinfo(
    request: Request, provider: OidcDep, bearer: Annotated[str | None, Depends(access_token)] = None
) -> Response:
    return _userinfo(request, provider)


@router.post("/userinfo", response_class=JSONResponse, responses=USERINFO_RESPONSES, summary="The same, by POST")
def userinfo_by_post(
    request: Request, provider: OidcDep, bearer: Annotated[str | None, Depends(access_token)] = None
) -> Response:
    return _userinfo(request, provider)


# ---- logout ---------------------------------------------------------------------------------------------

LOGOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: documented("a page saying you are logged out", "text/html"),
    302: {"description": "to a registered post-logout redirect URI (none is registered: the page)"},
}


def _logout(request: Request, platform: Platform, provider: OidcProvider, parameters: dict[str, str]) -> Response:
    """The ENT session ends whatever the request says. An id_token_hint this provider did not issue (or another
    client's) is an error of the request: logged out all the same, never redirected (RP-Initiated Logout 1.0,
    section 4), as a person who clicked "log out" expects."""
    try:
        ending = provider.server.validate_endpoint_request("end_session", HttpRequest.of(request, parameters))
        target = ending.redirect_uri
    except OAuth2Error:
        target = None
    response = redirect_to(target) if target else logged_out_page()
    end_ent_session(platform, request, response)
    return response


LogoutValue = Annotated[str | None, Query(max_length=MAX_URL)]
LogoutField = Annotated[str | None, Form(max_length=MAX_URL)]


@router.get("/logout", response_class=Response, responses=LOGOUT_RESPONSES, summary="RP-initiated logout")
def logout(
    request: Request,
    platform: PlatformDep,
    provider: OidcDep,
    id_token_hint: Annotated[str | None, Query(max_length=8192)] = None,
    client_id: LogoutValue = None,
    post_logout_redirect_uri: LogoutValue = None,
    state: LogoutValue = None,
) -> Response:
    # Read from the query by authlib; declared for the schema.
    return _logout(request, platform, provider, {})


@router.post("/logout", response_class=Response, responses=LOGOUT_RESPONSES, summary="RP-initiated logout, by POST")
def logout_by_post(
    request: Request,
    platform: PlatformDep,
    provider: OidcDep,
    id_token_hint: Annotated[str | None, Form(max_length=8192)] = None,
    client_id: LogoutField = None,
    post_logout_redirect_uri: LogoutField = None,
    state: LogoutField = None,
) -> Response:
    parameters = {
        "id_token_hint": id_token_hint,
        "client_id": client_id,
        "post_logout_redirect_uri": post_logout_redirect_uri,
        "state": state,
    }
    return _logout(request, platform, provider, {k: v for k, v in parameters.items() if v is not None})
