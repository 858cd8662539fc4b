"""Run the reference platform: seed (or reuse) its database, then serve it with uvicorn.

`add_target_arguments` and `run_target` back the CLI subcommand `schoolsurge target` and
`python -m schoolsurge.platform`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from schoolsurge.platform import db as platform_db
from schoolsurge.platform.app import create_app
from schoolsurge.platform.seed import default_db_path, ensure_database

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_SEED = 2021
DEFAULT_SIZE = 1270
DEFAULT_HASH_COST = 10


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, allow_host: str | None = None) -> None:
    """Refuse to expose the platform (weak, derivable passwords) beyond loopback unless asked by name."""
    if not is_loopback(host) and host != allow_host:
        raise ValueError(f"refusing to bind non-loopback address {host!r}; pass --allow-host {host} to allow it")


def write_ready_file(path: Path, base_url: str) -> None:
    """Write-then-rename, so a parent polling for the file never reads it half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(base_url + "\n")
    os.replace(tmp, path)


class _Server(uvicorn.Server):
    """uvicorn server that reports once its sockets are accepting connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_ready()


def bind_socket(host: str, port: int) -> tuple[socket.socket, str]:
    """Bind host:port ourselves (rather than in uvicorn) to learn the real port when port is 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # Nagle plus delayed ACKs add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    return sock, f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{bound_port}"


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    db: Path | None = None,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    hash_cost: int = DEFAULT_HASH_COST,
    ready_file: Path | None = None,
) -> None:
    """Seed or reuse the database, bind host:port (0 = ephemeral) and serve until SIGINT/SIGTERM."""
    if ready_file is not None:
        Path(ready_file).unlink(missing_ok=True)  # a stale file would announce the wrong port
    if threading.current_thread() is threading.main_thread():
        # Until uvicorn installs its own handlers, SIGTERM unwinds so an interrupted seed removes its temp file.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    db_path = Path(db) if db is not None else default_db_path(seed, size, hash_cost)
    ensure_database(db_path, seed, size, hash_cost)
    platform_db.reset_runtime(db_path)
    app = create_app(db_path)

    sock, base_url = bind_socket(host, port)

    def on_ready() -> None:
        print(f"[platform] listening on {base_url}", file=sys.stderr, flush=True)
        if ready_file is not None:
            write_ready_file(Path(ready_file), base_url)

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    _Server(config, on_ready).run(sockets=[sock])


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="bind address, loopback only unless --allow-host")
    parser.add_argument("--allow-host", default=None, help="allow this non-loopback --host (same value)")
    parser.add_argument("--port", type=_int_in(0, 65535), default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--db", type=Path, default=None, help="database file (default .cache/platform-SEED-SIZE-COST.sqlite3)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="roster and data seed")
    parser.add_argument("--size", type=_int_in(1, 10_000_000), default=DEFAULT_SIZE, help="number of pupils")
    parser.add_argument("--hash-cost", type=_int_in(4, 31), default=DEFAULT_HASH_COST, help="bcrypt rounds")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the base URL here once listening")


def run_target(args: argparse.Namespace) -> int:
    """Run the platform from parsed arguments; returns a process exit code."""
    try:
        check_bind_host(args.host, args.allow_host)
    except ValueError as exc:
        print(f"schoolsurge target: {exc}", file=sys.stderr)
        return 2
    try:
        serve(args.host, args.port, args.db, args.seed, args.size, args.hash_cost, args.ready_file)
    except OSError as exc:
        print(f"schoolsurge target: {exc}", file=sys.stderr)
        return 1
    return 0
