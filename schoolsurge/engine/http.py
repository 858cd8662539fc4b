"""The connections a client speaks through, each URL checked by the loopback guard.

A client may request absolute URLs on other hosts (a CAS server, a service), and a redirect may lead
anywhere; so every URL a connection is about to send to, redirects included, passes the same guard as the
target (once per host: the answer is remembered). A refused URL is never sent: the request fails with the
guard's message, which names the host and the option that would allow it.
"""

from __future__ import annotations

from typing import Any

from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from schoolsurge.safety import check_target


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


def guard_session(session: FastHttpSession, guard: HostGuard) -> FastHttpSession:
    """Check the URL of every request the session sends, each redirect's included."""
    send = session.client._urlopen  # called once per request and once per redirect followed

    def guarded_send(request: Any) -> Any:
        guard.check(request.url)
        return send(request)

    session.client._urlopen = guarded_send  # type: ignore[method-assign]
    return session


def new_connection(environment: Environment, guard: HostGuard, **kwargs: Any) -> FastHttpSession:
    """A connection of its own (not a person's), reporting to Locust's statistics, guarded."""
    return guard_session(FastHttpSession(environment.host, environment.events.request, user=None, **kwargs), guard)
