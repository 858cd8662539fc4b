"""Small helpers for the platform's pure ASGI middlewares."""

from __future__ import annotations

import json

from starlette.types import Scope, Send


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (`name` in lower case), or None."""
    return next((value for key, value in scope.get("headers", ()) if key == name), None)


async def json_reply(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """Answer {"detail": ...} with `status`, in the shape of every other error of the platform."""
    body = json.dumps({"detail": detail}).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
