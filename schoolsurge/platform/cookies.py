"""The platform's two cookies, and how they are set.

- `ent_session`: the ENT session, set by the ticket callback (routes/ent_auth.py), sent everywhere (path /).
- `cas_login_flow`: the browser's login flow, set with every login form (routes/cas.py), sent to /cas only and
  short-lived (`login_flow_ttl`). A form's execution token is stored with this cookie's hash (sso.py) and
  accepted only with it: a token taken from one browser's form is refused in another's (login CSRF). The same
  value is kept across the forms a browser opens, so two tabs of one browser both work.

Both are HttpOnly and SameSite=Lax, and Secure when the ENT is reached over https at one of its public URLs
(`--public-url https://...`): a browser then never sends them in clear text.
"""

from __future__ import annotations

import math
import re

from fastapi import Request, Response

from schoolsurge.platform.security import session_token

SESSION_COOKIE = "ent_session"
LOGIN_FLOW_COOKIE = "cas_login_flow"
LOGIN_FLOW_PATH = "/cas"
# What session_token() makes: 256 random bits, URL-safe base64 without padding.
LOGIN_FLOW_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


def set_session(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, value, path="/", httponly=True, samesite="lax", secure=secure)


def drop_session(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def login_flow_of(request: Request) -> str | None:
    """The request's login-flow cookie, if it has one."""
    return request.cookies.get(LOGIN_FLOW_COOKIE)


def login_flow_for_form(request: Request) -> str:
    """The login flow a new form is bound to: the browser's own, kept, or a new one."""
    current = login_flow_of(request)
    return current if current is not None and LOGIN_FLOW_VALUE.fullmatch(current) else session_token()


def set_login_flow(response: Response, value: str, lifetime: float, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_FLOW_COOKIE,
        value,
        max_age=math.ceil(lifetime),
        path=LOGIN_FLOW_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def drop_login_flow(response: Response, *, secure: bool) -> None:
    response.delete_cookie(LOGIN_FLOW_COOKIE, path=LOGIN_FLOW_PATH, httponly=True, samesite="lax", secure=secure)
