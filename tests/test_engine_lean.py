"""The engine's cost per request and per person: what a load generator spends on each of people's requests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


# Two requests on one kept-alive connection, a greenlet beside them counting its turns; then the server closes
# the connection and the pool must see it closed.
POOLED_CONNECTION = textwrap.dedent(
    """
    import gevent
    import schoolsurge.locustfile  # noqa: F401  (the engine as Locust loads it, with its work-arounds)
    from gevent.event import Event
    from gevent.server import StreamServer
    from geventhttpclient import HTTPClient

    closing = Event()

    def answer(sock, _):
        while sock.recv(65536):
            sock.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            if closing.is_set():
                break
        sock.close()

    server = StreamServer(("127.0.0.1", 0), answer)
    server.start()
    client = HTTPClient("127.0.0.1", server.server_port, concurrency=1)
    assert client.get("/").read() == b"ok"
    pool = client._connection_pool
    sock = pool._socket_queue.peek()
    turns = []
    beside = gevent.spawn(lambda: turns.append(1))
    alive = pool._is_socket_alive(sock)
    print("alive" if alive else "seen closed", "after yielding" if turns else "without yielding")
    beside.join()
    closing.set()
    assert client.get("/").read() == b"ok"  # the server closes this connection after its answer
    sock = pool._socket_queue.peek()
    while pool._is_socket_alive(sock):
        gevent.sleep(0.01)  # the FIN travels
    print("closed seen")
    """
)


def test_a_pooled_connection_is_checked_without_yielding_and_a_closed_one_is_seen() -> None:
    """Before each request geventhttpclient checks the idle connection it takes from its pool; gevent's
    select() made that a trip through the hub per request. The engine's check takes no turn, and still sees a
    connection the server closed."""
    out = subprocess.run([sys.executable, "-c", POOLED_CONNECTION], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines() == ["alive without yielding", "closed seen"]


# A process's set-up as Locust runs it (its parsed options, the init event's handler), then its collector's
# thresholds: how many surviving allocations make a young collection.
COLLECTOR_AFTER_INIT = textwrap.dedent(
    """
    import gc, sys
    import schoolsurge.locustfile as surge
    from locust.argument_parser import parse_options
    from locust.env import Environment

    arguments = ["-f", "locustfiles/surge.py", "--scenario", "scenarios/smoke.yaml", "--run-dir", sys.argv[1]]
    surge.on_init(Environment(parsed_options=parse_options(arguments)))
    print(gc.get_threshold()[0])
    """
)


def test_a_run_collects_cycles_rarely_not_every_700_allocations(tmp_path: Path) -> None:
    """Each person in a session holds objects that survive a young collection: at Python's default (one every
    700 surviving allocations) the collector walks them again and again, a few percent of a worker's CPU."""
    out = subprocess.run(
        [sys.executable, "-c", COLLECTOR_AFTER_INIT, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) >= 10_000
