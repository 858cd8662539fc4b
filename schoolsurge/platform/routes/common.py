"""What the routes share: the session cookie, declared as an OpenAPI security scheme."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyCookie

SESSION_COOKIE = "ent_session"

# A security scheme rather than a plain cookie parameter: schema-driven clients (schemathesis) then treat it
# as credentials, and the schema says which operations need a session.
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="HttpOnly session cookie set by GET /ent/auth/callback"
)
SessionCookie = Annotated[str | None, Depends(session_cookie)]
