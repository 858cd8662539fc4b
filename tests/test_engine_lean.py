"""The engine's cost per request and per person: what a load generator spends on each of people's requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A real server on an ephemeral loopback port that closes every connection after its answer, so each request
# opens a new connection, as a person's does after a think time longer than the target's keep-alive.
NEW_CONNECTIONS = textwrap.dedent(
    """
    import gevent
    import schoolsurge.locustfile  # noqa: F401  (the engine as Locust loads it, with its work-arounds)
    from gevent.server import StreamServer
    from geventhttpclient import UserAgent

    def answer(sock, _):
        sock.recv(65536)
        sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
        sock.close()

    server = StreamServer(("127.0.0.1", 0), answer)
    server.start()
    agent = UserAgent(max_retries=0)
    for _ in range(5):
        assert agent.urlopen(f"http://127.0.0.1:{server.server_port}/").content == b"ok"
    print("resolver threads used" if gevent.get_hub()._threadpool is not None else "no resolver thread")
    """
)


def test_a_new_connection_to_an_address_takes_no_resolver_thread() -> None:
    """geventhttpclient resolves the target at every new connection; for an IP address that is a hand-off to
    gevent's resolver thread pool per connection, for nothing: the engine connects without it."""
    out = subprocess.run([sys.executable, "-c", NEW_CONNECTIONS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "no resolver thread"
