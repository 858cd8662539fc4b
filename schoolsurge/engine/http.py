"""The one guarded opener: every HTTP exchange the suite has with a target goes through `GuardedOpener`.

People's requests (each person's Locust FastHttpSession, `guard_session`), back-channel and bot connections
(`new_connection`), the scrapes of the target's /metrics and the admin calls (`fetch`) all send each hop, the
first request and every redirect it leads to, through `GuardedOpener._send`, which

- checks the URL with the loopback guard before any connection is made: a host that is not loopback nor the
  one `--allow-host` names is never connected to; the exchange fails with the guard's message (UnsafeTargetError,
  which stops the test when a person's client asked for it);
- keeps credentials on their origin: an Authorization header goes only to the origin (scheme, host, port) of
  the request it was set on, never to another that a redirect leads to (cookies follow the cookie jar's
  rules, by host, and geventhttpclient drops a Cookie header set by hand at any redirect);
- reads the body at most to a limit (`--max-body-bytes` for people, MAX_SCRAPE_BYTES for a scrape): a larger
  one, whether its Content-Length says so or it keeps coming (chunked), is not read further, its connection is
  closed, and the exchange fails with ResponseTooLarge (for a person: a failed request of kind "other",
  whatever the client does with the empty body it then sees). Compressed bodies are held to the same limit
  once decompressed; one that does not decompress fails the same way (UnreadableBody).

Bodies are read whole as they arrive (a response is not streamed), as Locust reads them unless asked to stream.
"""

from __future__ import annotations

import http.client
import zlib
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import brotli
import gevent
from geventhttpclient.url import URL
from geventhttpclient.useragent import ConnectionError as ExchangeError
from geventhttpclient.useragent import UserAgent
from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager
from locust.env import Environment

from schoolsurge.clients.base import DEFAULT_MAX_BODY_BYTES
from schoolsurge.errors import UnsafeTargetError
from schoolsurge.safety import check_target

READ_BLOCK_BYTES = 64 << 10
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization")
_FIRST_ORIGIN = "schoolsurge_first_origin"  # set on a request at its first hop (its URL): whose credentials it carries

# What a failed exchange raises, from the guard to the parser (a garbage status line is an HTTPException).
EXCHANGE_FAILURES = (
    OSError,
    UnsafeTargetError,
    ExchangeError,
    http.client.HTTPException,
    ValueError,  # a malformed URL or header
)


class UnreadableBody(OSError):
    """A response whose body was not read (or not decoded): an OSError, so Locust and the suite's own calls
    count it as a failed exchange, with the response's status (Locust's session takes it from `response`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.response: Any = None


class ResponseTooLarge(UnreadableBody):
    """A response body over the limit: not read further, its connection closed."""

    def __init__(self, limit_bytes: int, limit_name: str) -> None:
        super().__init__(f"response body over {_size_text(limit_bytes)} ({limit_name})")


class FetchFailed(OSError):
    """One of the suite's own calls (a scrape, an admin call) failed; the message is short and says why."""


class HostGuard:
    """Remembers the hosts it has allowed, so a request never waits on a DNS lookup twice."""

    def __init__(self, allowed_host: str | None) -> None:
        self.allowed_host = allowed_host
        self._checked: set[str] = set()

    def check(self, url: str) -> None:
        """Raise UnsafeTargetError unless the URL's host is loopback or the allowed host."""
        origin = url.split("/", 3)[2] if "://" in url else url  # scheme://host:port/...
        if origin not in self._checked:
            check_target(url, self.allowed_host)
            self._checked.add(origin)


class GuardedOpener:
    """The run's HTTP: the loopback guard on every hop, credentials kept on their origin, bodies capped."""

    def __init__(self, allowed_host: str | None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.guard = HostGuard(allowed_host)
        self.max_body_bytes = max_body_bytes

    def guard_session(self, session: FastHttpSession) -> FastHttpSession:
        """Send every request of a Locust session, each redirect's included, through the opener; a response
        whose body was over the limit is reported failed for that reason, whatever the client marks."""
        send, request = session.client._urlopen, session.request  # _urlopen: once per hop
        target = _origin(URL(session.base_url)) if session.base_url else None

        def guarded_send(hop: Any) -> Any:
            if session.auth_header and not hasattr(hop, _FIRST_ORIGIN):  # a request's first hop
                _keep_target_credentials_on_target(hop, session.auth_header, target)
            return self._send(send, hop, self.max_body_bytes, "--max-body-bytes")

        def guarded_request(*args: Any, **kwargs: Any) -> Any:
            response = request(*args, **kwargs)
            error = getattr(response, "error", None)
            if isinstance(error, UnreadableBody) and isinstance(response, ResponseContextManager):
                _keep_failed(response, error)
            return response

        session.client._urlopen = guarded_send  # type: ignore[method-assign]
        session.request = guarded_request  # type: ignore[method-assign]
        return session

    def new_connection(self, environment: Environment, **kwargs: Any) -> FastHttpSession:
        """A connection of its own (not a person's), reporting to Locust's statistics, guarded."""
        session = FastHttpSession(environment.host, environment.events.request, user=None, **kwargs)
        return self.guard_session(session)

    def fetch(
        self,
        url: str,
        *,
        timeout_s: float,
        max_body_bytes: int,
        limit_name: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        max_redirects: int = 3,
    ) -> bytes:
        """The body of a 2xx answer to one of the suite's own calls, within `timeout_s` in all; FetchFailed
        says why not (refused by the guard, unreachable, not HTTP, an error status, a body over the limit)."""
        agent = _AnyStatusAgent(
            max_retries=0, max_redirects=max_redirects, network_timeout=timeout_s, connection_timeout=timeout_s
        )
        send = agent._urlopen
        agent._urlopen = lambda request: self._send(send, request, max_body_bytes, limit_name)  # type: ignore[method-assign]
        try:
            with gevent.Timeout(timeout_s, FetchFailed(f"no answer within {timeout_s:g} s")):
                response = agent.urlopen(url, method=method, headers=dict(headers or {}), payload=body)
                status = response.status_code
                if not 200 <= status < 300:
                    raise FetchFailed(f"HTTP {status}" + (" (redirect not followed)" if 300 <= status < 400 else ""))
                return response.content
        except FetchFailed:
            raise
        except EXCHANGE_FAILURES as error:
            reason = f"not an HTTP answer: {error}" if isinstance(error, http.client.HTTPException) else str(error)
            raise FetchFailed(excerpt(reason or type(error).__name__)) from None
        finally:
            agent.close()

    def _send(self, send: Callable[[Any], Any], request: Any, max_body_bytes: int, limit_name: str) -> Any:
        """One hop: guard, credentials, the request sent, the body read up to the limit."""
        self.guard.check(request.url)
        _keep_credentials_on_their_origin(request)
        response = send(request)
        response._cached_content = _read_body(response, max_body_bytes, limit_name)  # what .content returns
        return response


class _AnyStatusAgent(UserAgent):
    """geventhttpclient's agent, leaving the judgement of a status to `fetch`."""

    def _verify_status(self, status_code: int, url: Any = None) -> None:
        pass


def _keep_target_credentials_on_target(request: Any, auth_header: str, target: Any) -> None:
    """Locust puts the credentials of the target's URL (http://user:password@host) on every request, absolute
    URLs to other origins included: they are the target's only."""
    if _origin(request.url_split) != target and request.headers.get("authorization") == auth_header:
        request.headers.discard("authorization")


def _keep_credentials_on_their_origin(request: Any) -> None:
    """Credentials set on a request belong to the origin of its first hop; a redirect elsewhere loses them. The
    first hop's URL is kept as it is: origins are compared only at a redirect (a new URL), not parsed at every
    request."""
    url = request.url_split
    first = getattr(request, _FIRST_ORIGIN, None)
    if first is None:
        setattr(request, _FIRST_ORIGIN, url)
    elif first is not url and _origin(first) != _origin(url):
        for name in CREDENTIAL_HEADERS:
            request.headers.discard(name)


def _origin(url: URL) -> tuple[str, str, int | None]:
    """RFC 6454's origin: scheme, host, port."""
    return (url.scheme, url.host, url.port)


def _keep_failed(response: Any, error: UnreadableBody) -> None:
    """A client reading the empty body it got marks the response failed its own way ("not JSON", "no login
    form") or even succeeded; the request is reported failed with the real reason instead."""
    response._manual_result = error  # what Locust's ResponseContextManager reports when the block ends
    response.success = response.failure = _ignored


def _ignored(*_: Any, **__: Any) -> None:
    pass


def _read_body(response: Any, max_bytes: int, limit_name: str) -> bytes:
    """The body, decoded, read at most to max_bytes (and as much once decompressed); ResponseTooLarge beyond."""
    try:
        declared = int(response.headers.get("content-length") or -1)
    except (TypeError, ValueError):  # a repeated or malformed length: the parser has the last word
        declared = -1
    if declared > max_bytes and not response.isclosed():  # a HEAD or 304 announces a length it does not send
        _fail(response, ResponseTooLarge(max_bytes, limit_name))
    if declared >= 0:
        raw = response.read()  # the parser stops at the announced length
    else:  # chunked, or until the connection closes: read by blocks, up to the limit
        received = bytearray()
        while chunk := response.read(READ_BLOCK_BYTES):
            received += chunk
            if len(received) > max_bytes:
                _fail(response, ResponseTooLarge(max_bytes, limit_name))
        raw = bytes(received)
    response.release()
    encoding = response.headers.get("content-encoding")
    if not raw or not isinstance(encoding, str) or encoding.lower() in ("", "identity"):
        return raw
    try:
        decoded = _decompressed(raw, encoding.lower(), max_bytes)
    except (zlib.error, brotli.error) as error:
        _fail(response, UnreadableBody(f"response body not {encoding} as announced ({error})"))
    if decoded is None:
        _fail(response, ResponseTooLarge(max_bytes, limit_name))
    return decoded


def _decompressed(raw: bytes, encoding: str, max_bytes: int) -> bytes | None:
    """The body decompressed (gzip, deflate, br; another encoding is left as it came), None past max_bytes."""
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        try:
            return _inflated(raw, wbits, max_bytes)
        except zlib.error:
            if encoding != "deflate":
                raise
            return _inflated(raw, -zlib.MAX_WBITS, max_bytes)  # a raw deflate stream, as some servers send
    if encoding == "br":
        decompressor = brotli.Decompressor()
        decoded = decompressor.process(raw, output_buffer_limit=max_bytes + 1)
        if len(decoded) > max_bytes:
            return None
        if not decompressor.is_finished():
            raise brotli.error("incomplete or truncated stream")
        return decoded
    return raw


def _inflated(raw: bytes, wbits: int, max_bytes: int) -> bytes | None:
    inflater = zlib.decompressobj(wbits)
    decoded = inflater.decompress(raw, max_bytes + 1)
    if len(decoded) > max_bytes:
        return None
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return decoded


def _fail(response: Any, error: UnreadableBody) -> NoReturn:
    response.release()  # a body not read to its end: its connection is closed, the sender stopped
    response._cached_content = b""
    error.response = response
    raise error


def _size_text(size_bytes: int) -> str:
    """10 MiB, 512 KiB, 1000 bytes."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size_bytes >= 1 << shift and size_bytes % (1 << shift) == 0:
            return f"{size_bytes >> shift} {unit}"
    return f"{size_bytes} bytes"


def excerpt(text: str, max_chars: int = 200) -> str:
    """At most max_chars of a message, on one line: a hostile target's answer never floods the log."""
    line = " ".join(text[: max_chars * 2].split())
    return line if len(line) <= max_chars else line[: max_chars - 1] + "…"
