"""The platform's cookies, and how they are set.

- `ent_session`: the ENT session, set by the ENT's single sign-on callbacks (routes/ent_auth.py), sent
  everywhere (path /).
- login-flow cookies, one per login form's path: `cas_login_flow` (sent to /cas, routes/cas.py) and
  `oidc_login_flow` (sent to /oidc, routes/oidc.py). Short-lived (`login_flow_ttl`). A form's execution token
  is stored with this cookie's hash (sso.py) and accepted only with it: a token taken from one browser's form
  is refused in another's (login CSRF). The same value is kept across the forms a browser opens, so two tabs
  of one browser both work.
- `ent_oidc_login` (sent to /ent/auth/oidc): the ENT's own side of an OpenID Connect login, binding the
  `state` it sent the provider to the browser it sent it from (ent_oidc.py), as a relying party must.

All are HttpOnly and SameSite=Lax, and Secure when the ENT is reached over https at one of its public URLs
(`--public-url https://...`): a browser then never sends them in clear text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fastapi import Request, Response

from schoolsurge.platform.security import session_token

SESSION_COOKIE = "ent_session"
# What session_token() makes: 256 random bits, URL-safe base64 without padding.
FLOW_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


def set_session(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, value, path="/", httponly=True, samesite="lax", secure=secure)


def drop_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


@dataclass(frozen=True)
class FlowCookie:
    """A cookie binding a login in progress to its browser, sent to `path` only."""

    name: str
    path: str

    def of(self, request: Request) -> str | None:
        """The request's cookie, if it has one."""
        return request.cookies.get(self.name)

    def for_form(self, request: Request) -> str:
        """The value a new form is bound to: the browser's own, kept, or a new one."""
        current = self.of(request)
        return current if current is not None and FLOW_VALUE.fullmatch(current) else session_token()

    def set(self, response: Response, value: str, lifetime: float, *, secure: bool) -> None:
        response.set_cookie(
            self.name,
            value,
            max_age=math.ceil(lifetime),
            path=self.path,
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    def drop(self, response: Response, *, secure: bool) -> None:
        response.delete_cookie(self.name, path=self.path, httponly=True, samesite="lax", secure=secure)


CAS_LOGIN_FLOW = FlowCookie("cas_login_flow", "/cas")
OIDC_LOGIN_FLOW = FlowCookie("oidc_login_flow", "/oidc")
ENT_OIDC_LOGIN = FlowCookie("ent_oidc_login", "/ent/auth/oidc")
