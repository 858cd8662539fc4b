"""Work-arounds for Locust behaviour that costs the load generators, applied once when the engine is loaded."""

from __future__ import annotations

import _socket
import functools
import ipaddress
import socket
from typing import Any

import gevent.monkey
from geventhttpclient.connectionpool import ConnectionPool
from locust import argument_parser


def cache_locust_default_arguments() -> None:
    """Build Locust's default options once per process instead of at every option of every spawn message.

    A Locust worker handling a spawn message (locust/runners.py, WorkerRunner.handle_message, Locust 2.47)
    calls argument_parser.default_args_dict() once per option the master sent: each call builds Locust's whole
    argument parser, about a hundred times a message. The pool shape changes the user count every second, so a
    worker spent a third of its CPU there. The defaults cannot change within a process and both of Locust's
    callers only test membership, so one dict serves them all."""
    if not hasattr(argument_parser.default_args_dict, "cache_info"):  # once: a cached function has cache_info
        argument_parser.default_args_dict = functools.cache(argument_parser.default_args_dict)


def resolve_address_literals_in_place() -> None:
    """Connect to an IP address without a trip through gevent's resolver thread.

    geventhttpclient (connectionpool.py, ConnectionPool._resolve, 2.6) calls gevent's getaddrinfo for every new
    connection, and gevent's default resolver runs each call in a thread of its pool: a thread hand-off and two
    wake-ups per connection, even for 127.0.0.1. A person opens a connection at each login, and again after
    every think time longer than the target's keep-alive (py-spy put about 8% of a worker's samples there). An
    IP address needs no lookup: its address info is computed once, in place (AI_NUMERICHOST never blocks), and
    kept per (address, port, family). A host name is still resolved as before, at each connection."""
    resolve = ConnectionPool._resolve
    if getattr(resolve, "resolves_literals_in_place", False):
        return
    known: dict[tuple[str, int, int], list[Any]] = {}

    @functools.wraps(resolve)
    def resolve_in_place(pool: ConnectionPool) -> list[Any]:
        host, port = pool._connection_host, pool._connection_port
        family = socket.AF_INET if pool.disable_ipv6 else 0
        key = (host, port, family)
        found = known.get(key)
        if found is None:
            try:
                ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                return resolve(pool)  # a name: looked up at each connection, as geventhttpclient does
            found = known[key] = _socket.getaddrinfo(
                host.strip("[]"), port, family, socket.SOCK_STREAM, socket.SOL_TCP, socket.AI_NUMERICHOST
            )
        return found

    resolve_in_place.resolves_literals_in_place = True  # type: ignore[attr-defined]
    ConnectionPool._resolve = resolve_in_place  # type: ignore[method-assign]


def check_pooled_connections_without_yielding() -> None:
    """Check a pooled connection with one select(2) call, without a trip through gevent's hub.

    Before each request geventhttpclient (connectionpool.py, ConnectionPool._is_socket_alive, 2.6) asks whether
    the idle connection it takes from its pool was closed meanwhile, with gevent's select() and a zero timeout:
    gevent then runs the system call and yields to its hub once (gevent/select.py, for fairness), a whole loop
    turn per request. The same question, asked of the system call alone, gets the same answer (readable while
    idle: closed or dirty) at no switch: the request yields soon enough, on its answer."""
    alive = ConnectionPool._is_socket_alive
    if getattr(alive, "checks_without_yielding", False):
        return
    poll = gevent.monkey.get_original("select", "select")

    @functools.wraps(alive)
    def alive_without_yielding(pool: ConnectionPool, sock: Any) -> bool:
        if sock is None:
            return False
        try:
            if sock.fileno() < 0:
                return False
            readable, _, _ = poll([sock], [], [], 0.0)
            return not readable
        except (OSError, ValueError):
            return False

    alive_without_yielding.checks_without_yielding = True  # type: ignore[attr-defined]
    ConnectionPool._is_socket_alive = alive_without_yielding  # type: ignore[method-assign]
