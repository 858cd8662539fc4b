"""A person's cookie jar: the standard library's, its Cookie header remembered while the jar does not change.

geventhttpclient asks the jar for the Cookie header of every request and hands it every response. The standard
library's jar (http.cookiejar, as Locust's FastHttpSession uses) works the header out each time: every domain,
path and cookie checked against the request by the policy, the attributes quoted and sorted, expired cookies
looked for. With a logged-in person's two cookies that was about 30 µs of CPU a request, a sixth of what a
worker spends on a person's request. A person's cookies change at a login or a logout, not at each page: the
header is the same for the same URL until then.

`CachedCookieJar` keeps the header the standard library worked out per request URL, and forgets them all when
a cookie is set or cleared or the first of the jar's cookies expires; what it sends is always what the
standard library would send. A response without Set-Cookie is not parsed for cookies at all.
"""

from __future__ import annotations

import time
from http.cookiejar import CookieJar, CookiePolicy, DefaultCookiePolicy
from typing import Any

from locust.contrib.fasthttp import FastHttpSession

MAX_REMEMBERED_URLS = 8  # a person reads a handful of pages; past that the headers are worked out afresh
_NEVER = float("inf")
_SHARED_POLICY = DefaultCookiePolicy()  # stateless between two calls: one for every person's jar


class CachedCookieJar(CookieJar):
    """http.cookiejar.CookieJar whose Cookie header per request URL is remembered until the jar changes."""

    def __init__(self, policy: CookiePolicy | None = None) -> None:
        super().__init__(policy or _SHARED_POLICY)
        self._headers: dict[tuple[str, bool, str], str] = {}  # "" for a request that gets no cookie
        self._first_expiry = _NEVER  # the remembered headers hold until then (int seconds, as the jar compares)

    def add_cookie_header(self, request: Any) -> None:
        if getattr(self._policy, "rfc2965", False):  # a Cookie2 header too: left to the standard library
            super().add_cookie_header(request)
            return
        key = (request.get_full_url(), request.unverifiable, request.origin_req_host)
        header = self._headers.get(key)
        if header is None or int(time.time()) >= self._first_expiry:
            header = self._header_for(request)
            if len(self._headers) >= MAX_REMEMBERED_URLS:
                self._headers.clear()
            self._headers[key] = header
        if header and not request.has_header("Cookie"):  # as the standard library: a header set by hand stays
            request.add_unredirected_header("Cookie", header)

    def extract_cookies(self, response: Any, request: Any) -> None:
        headers = response.info()
        if headers.get_all("Set-Cookie") or headers.get_all("Set-Cookie2"):
            super().extract_cookies(response, request)  # sets them through set_cookie, or clears them

    def set_cookie(self, cookie: Any) -> None:
        self._forget()
        super().set_cookie(cookie)

    def clear(self, domain: str | None = None, path: str | None = None, name: str | None = None) -> None:
        self._forget()
        super().clear(domain, path, name)

    def clear_session_cookies(self) -> None:
        self._forget()
        super().clear_session_cookies()

    def _forget(self) -> None:
        self._headers.clear()
        self._first_expiry = _NEVER

    def _header_for(self, request: Any) -> str:
        """The Cookie header the standard library's add_cookie_header gives the request ("" for none), worked out
        as it does (expired cookies cleared after), and the jar's first expiry, until which it holds."""
        with self._cookies_lock:  # the steps of the standard library's add_cookie_header, its private methods
            self._policy._now = self._now = int(time.time())  # type: ignore[attr-defined]
            header = "; ".join(self._cookie_attrs(self._cookies_for_request(request)))  # type: ignore[attr-defined]
        self.clear_expired_cookies()  # one that expired is cleared: every header remembered is forgotten
        self._first_expiry = min((cookie.expires for cookie in self if cookie.expires is not None), default=_NEVER)
        return header


def with_cached_cookies(session: FastHttpSession) -> FastHttpSession:
    """Give a Locust session (a person's) a CachedCookieJar in place of the standard library's."""
    session.cookiejar = session.client.cookiejar = CachedCookieJar()
    return session
