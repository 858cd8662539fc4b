"""The request-body limit: enforced on the bytes actually received, on every path, before anything reads a
body (authentication included: FastAPI reads a body before it checks an admin token).

A Content-Length over the limit is refused at once, unread. A body without one (chunked), or longer than it
said, is counted as it arrives and refused as soon as the count passes the limit: a worker never holds more
than about the limit of one request's body. The refusal closes the connection, so the rest is never read.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schoolsurge.platform.asgi import header, json_reply

MAX_BODY_BYTES = 1 << 20


def announced_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None if it has none (chunked) or an unreadable one."""
    value = header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class BodyLimit:
    """Pure ASGI middleware refusing request bodies over `limit` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = announced_length(scope)
        if announced is not None and announced > self.limit:
            await refuse_too_large(send, self.limit)
            return
        await self.app(scope, *_CountedBody(receive, send, self.limit).channels())


async def refuse_too_large(send: Send, limit: int) -> None:
    # Connection: close, so the server stops reading the rest instead of draining it.
    await json_reply(send, 413, f"request body over {limit} bytes", {"connection": "close"})


class _CountedBody:
    """The app's receive and send for one request: counts body bytes, and past the limit answers 413 and tells
    the app the client went away (it stops reading; whatever it answers then is dropped)."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self.limit = receive, send, limit
        self.received = 0
        self.response_started = False
        self.refused = False

    def channels(self) -> tuple[Receive, Send]:
        return self.receive, self.send

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                await self._refuse()
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)

    async def _refuse(self) -> None:
        self.refused = True
        if not self.response_started:  # an app answering while it reads can only be cut off
            await refuse_too_large(self._send, self.limit)
