"""A person's cookie jar (engine/cookies.py) sends what the standard library's jar sends, request after request,
while cookies are set, scoped by path, kept off plain HTTP, expired, deleted and cleared: two Locust sessions,
one with each jar, against a real loopback server that records the Cookie header of every request."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator

from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from schoolsurge.engine.cookies import MAX_REMEMBERED_URLS, CachedCookieJar, with_cached_cookies

EXPIRY_WAIT_S = 10  # a cookie of Max-Age=1 is gone within 2 s; a busy machine gets more
SET_BY_PATH = {
    "/login": ["session=s1; Path=/", "flow=f1; Path=/cas", "tls=t; Secure; Path=/"],
    "/short": ["short=1; Max-Age=1; Path=/"],
    "/cas/login": ["flow=f2; Path=/cas"],
    "/again": ["session=s2; Path=/"],
    "/logout": ['session=""; Max-Age=0; Path=/'],
}


@contextlib.contextmanager
def cookie_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on an ephemeral loopback port setting SET_BY_PATH's cookies; yields its URL and the
    Cookie header of each request it got ("" for none), in order."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Cookie") or "")
            if self.path == "/go":  # a redirect to a path with other cookies: its hop gets its own header
                self.send_response(302)
                self.send_header("Location", "/cas/login")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            for cookie in SET_BY_PATH.get(self.path.split("?", 1)[0], []):
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


class TwoJars:
    """The same requests through a session with the standard library's jar and one with CachedCookieJar, each to
    its own server."""

    def __init__(self, plain: tuple[str, list[str]], cached: tuple[str, list[str]]) -> None:
        environment = Environment()
        self.plain = FastHttpSession(plain[0], environment.events.request, user=None)
        self.cached = with_cached_cookies(FastHttpSession(cached[0], environment.events.request, user=None))
        self.seen = (plain[1], cached[1])

    def get(self, path: str, **kwargs: object) -> None:
        """Both sessions ask for `path` within one clock second: jars expire cookies by whole seconds, so a pair
        of requests on either side of a second's end is asked again."""
        while True:
            second, marks = int(time.time()), [len(seen) for seen in self.seen]
            for session in (self.plain, self.cached):
                assert session.get(path, name="step", **kwargs).status_code == 200
            if int(time.time()) == second:
                return
            for seen, mark in zip(self.seen, marks, strict=True):
                del seen[mark:]  # every hop of the pair (a redirect makes two)


def test_the_cached_jar_sends_what_the_standard_library_s_jar_sends() -> None:
    with cookie_server() as plain, cookie_server() as cached:
        jars = TwoJars(plain, cached)
        plain_seen, cached_seen = jars.seen
        assert isinstance(jars.cached.client.cookiejar, CachedCookieJar)
        pages = ["/", "/login", "/api/dashboard", "/cas/login", "/api/homework", "/cas/login", "/api/homework?child=2"]
        pages += [f"/api/virtual-classes/{n}/heartbeat" for n in range(MAX_REMEMBERED_URLS + 2)]  # past the limit
        pages += ["/api/dashboard", "/again", "/api/dashboard", "/go", "/cas/login"]
        for path in pages:
            jars.get(path)
        assert cached_seen == plain_seen
        assert "session=s2" in plain_seen[-1] and "flow=f2" in plain_seen[-1], "the server's cookies came back"
        assert "flow=" not in plain_seen[-3] and "flow=f2" in plain_seen[-2], "a redirect's hop has its own cookies"
        assert all("tls=" not in header for header in plain_seen), "a Secure cookie never goes over plain HTTP"

        # A cookie expires: the same URL, the jar unchanged since, no longer gets it.
        jars.get("/short")
        jars.get("/api/dashboard")
        assert "short=1" in plain_seen[-1]
        deadline = time.monotonic() + EXPIRY_WAIT_S
        while "short=1" in plain_seen[-1] and time.monotonic() < deadline:
            jars.get("/api/dashboard")
            assert cached_seen == plain_seen
        assert "short=1" not in plain_seen[-1], f"the Max-Age=1 cookie did not expire in {EXPIRY_WAIT_S} s"

        jars.get("/api/dashboard", headers={"Cookie": "by=hand"})  # a Cookie header set by hand is the one sent
        jars.get("/logout")  # Max-Age=0: the session cookie is deleted
        jars.get("/api/dashboard")
        jars.plain.cookiejar.clear()
        jars.cached.cookiejar.clear()  # as the engine does between two people
        jars.get("/api/dashboard")
    assert cached_seen == plain_seen
    assert plain_seen[-4:] == ["by=hand", "session=s2", "", ""]
