"""What the endpoints get from FastAPI: the platform serving the request, and who is asking.

- `PlatformDep`: the `Platform` of the app (database, settings, metrics, service registry), from the app state.
- `OidcDep`: the app's OpenID Provider (`--sso oidc` only), from the app state.
- `CallerDep`: the caller, from the session cookie; `caller.session()` and `caller.account()` give their session
  and account, or answer 401.

The dependencies are `async def` because they only read attributes: FastAPI calls them on the event loop,
with no trip to the thread pool. Everything that touches SQLite or bcrypt runs in the endpoints, which are plain
`def` and run in the thread pool (SQLite connections belong to one thread, see `Platform.connection`).

The session is looked up when the endpoint asks for it, not while FastAPI resolves dependencies. FastAPI calls
dependencies before it checks the request's own parameters and body, so a dependency that answered 401 would
hide the 422 of a malformed request. Done this way, a malformed request gets 422 whether it has a session or not,
and a well-formed request without a valid session gets 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie

from schoolsurge.platform.cookies import SESSION_COOKIE
from schoolsurge.platform.core import Account, Platform, Session
from schoolsurge.platform.oidc_provider import OidcProvider

# A security scheme rather than a plain cookie parameter: schema-driven clients (schemathesis) then treat it
# as credentials, and the schema says which operations need a session.
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="HttpOnly session cookie set by GET /ent/auth/callback"
)
SessionCookie = Annotated[str | None, Depends(session_cookie)]


async def get_platform(request: Request) -> Platform:
    """The platform of the app serving this request (create_app puts it in the app state)."""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_oidc(request: Request) -> OidcProvider:
    """The OpenID Provider of the app serving this request (create_app puts it in the app state in OIDC mode)."""
    provider: OidcProvider = request.app.state.oidc
    return provider


OidcDep = Annotated[OidcProvider, Depends(get_oidc)]


@dataclass(frozen=True)
class Caller:
    """Whoever sent the request, as their session cookie says."""

    platform: Platform
    cookie: str | None

    def session(self) -> Session:
        """The caller's session, refreshed (sliding expiry); 401 without a valid one."""
        return self.platform.session(self.cookie)

    def account(self) -> Account:
        """The caller's account; 401 without a valid session."""
        return self.session().account


async def get_caller(request: Request, ent_session: SessionCookie = None) -> Caller:
    # get_platform called, not declared (PlatformDep): FastAPI resolves a declared dependency's own dependencies
    # again even when its value is cached, about 10 µs a request.
    return Caller(await get_platform(request), ent_session)


CallerDep = Annotated[Caller, Depends(get_caller)]
