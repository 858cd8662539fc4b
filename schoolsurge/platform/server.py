"""Run the reference platform: prepare its own database (a copy of the cached seed), bind the socket, start the
worker processes on it, and serve until SIGINT/SIGTERM.

`add_target_arguments` and `run_target` back the CLI subcommand `schoolsurge target` and
`python -m schoolsurge.platform`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from schoolsurge.platform.security import admin_token_path, token_hash, write_admin_token
from schoolsurge.platform.seed import DEFAULT_CACHE_DIR, prepare_database
from schoolsurge.platform.settings import Settings, SettingsError, add_knob_arguments, int_in, resolve
from schoolsurge.platform.worker import WORKER_ENV, WorkerConfig
from schoolsurge.safety import is_loopback_host

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_SEED = 2021
DEFAULT_SIZE = 1270
DEFAULT_HASH_COST = Settings().hash_cost
WORKER_READY_TIMEOUT_S = 120.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def check_bind_host(host: str, allow_host: str | None = None) -> None:
    """Refuse to expose the platform (weak, derivable passwords) beyond loopback unless asked by name."""
    if not is_loopback_host(host) and host != allow_host:
        raise ValueError(f"refusing to bind non-loopback address {host!r}; pass --allow-host {host} to allow it")


def write_ready_file(path: Path, base_url: str) -> None:
    """Write-then-rename, so a parent polling for the file never reads it half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(base_url + "\n")
    os.replace(tmp, path)


def bind_socket(host: str, port: int) -> tuple[socket.socket, str]:
    """Bind host:port ourselves (rather than in uvicorn) to learn the real port when port is 0; the workers
    all accept on this one socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it
    # Nagle plus delayed ACKs add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    bound_port = sock.getsockname()[1]
    return sock, f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{bound_port}"


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor (restarts dead workers), announcing readiness once every worker serves and
    clearing a dead worker's live gauges from the shared metrics."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], on_ready: Callable[[], None]) -> None:
        super().__init__(config, sockets)
        self.on_ready = on_ready
        self.failed = False

    def init_processes(self) -> None:
        super().init_processes()
        for process in self.processes:
            if not process.wait_until_ready(WORKER_READY_TIMEOUT_S, self.should_exit):
                if not self.should_exit.is_set():
                    self.failed = True
                    self.should_exit.set()
                return
        self.on_ready()

    def keep_subprocess_alive(self) -> None:
        before = {process.pid for process in self.processes}
        super().keep_subprocess_alive()
        from prometheus_client import multiprocess

        for pid in before - {process.pid for process in self.processes}:
            if pid is not None:
                multiprocess.mark_process_dead(pid, os.environ[MULTIPROC_ENV])


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _exclusive(db_path: Path) -> Iterator[IO[str]]:
    """One server per database file: a second one would mix its sessions and metrics with ours."""
    lock_path = Path(f"{db_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another platform is serving {db_path}; give this one its own --db") from None
        yield handle


def _log(message: str) -> None:
    print(f"[platform] {message}", file=sys.stderr, flush=True)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    db: Path | None = None,
    seed: int = DEFAULT_SEED,
    size: int = DEFAULT_SIZE,
    settings: Settings | None = None,
    profile: str = "custom",
    cache_dir: Path = DEFAULT_CACHE_DIR,
    ready_file: Path | None = None,
) -> int:
    """Prepare the database, bind host:port (0 = ephemeral), run the workers until SIGINT/SIGTERM.
    Returns an exit code."""
    cfg = settings or Settings()
    if ready_file is not None:
        Path(ready_file).unlink(missing_ok=True)  # a stale file would announce the wrong port
    if threading.current_thread() is threading.main_thread():
        # Until the supervisor installs its own handlers, SIGTERM unwinds so an interrupted seed cleans up.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Without --db: a scratch copy of the cached seed, gone at exit.
    scratch = None if db is not None else Path(tempfile.mkdtemp(prefix="schoolsurge-platform-db-"))
    db_path = Path(db) if scratch is None else scratch / "platform.sqlite3"
    state_dir = Path(f"{db_path}.run")
    try:
        with _exclusive(db_path):
            prepare_database(db_path, cache_dir, seed, size, cfg.hash_cost, _log)
            shutil.rmtree(state_dir, ignore_errors=True)  # metrics of an earlier run must not add up with ours
            (state_dir / "metrics").mkdir(parents=True)
            token = write_admin_token(db_path)
            _log(f"admin token (Authorization: Bearer ...): {token} (also in {admin_token_path(db_path)})")
            sock, base_url = bind_socket(host, port)
            os.environ[MULTIPROC_ENV] = str(state_dir / "metrics")
            os.environ[WORKER_ENV] = WorkerConfig(db_path, cfg, state_dir / "capacity.json", token_hash(token)).to_env()

            def on_ready() -> None:
                _log(
                    f"listening on {base_url} (profile {profile}: {cfg.workers} worker(s) x {cfg.max_in_flight} "
                    f"in flight + {cfg.queue_length} queued, bcrypt cost {cfg.hash_cost}, database {db_path})"
                )
                if ready_file is not None:
                    write_ready_file(Path(ready_file), base_url)

            config = uvicorn.Config(
                "schoolsurge.platform.worker:app",
                factory=True,
                workers=cfg.workers,
                log_level="warning",
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=5,
                timeout_worker_healthcheck=30,
            )
            supervisor = Supervisor(config, [sock], on_ready)
            supervisor.run()
            sock.close()
            if supervisor.failed:
                _log("a worker failed to start; see the lines above")
                return 1
            return 0
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        admin_token_path(db_path).unlink(missing_ok=True)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST, help="bind address, loopback only unless --allow-host")
    parser.add_argument("--allow-host", default=None, help="allow this non-loopback --host (same value)")
    parser.add_argument("--port", type=int_in(0, 65535), default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="this server's database file: kept across restarts if it matches seed/size/cost, else a copy of "
        "the cached seed (default: a temporary copy, deleted at exit)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where seeded databases are cached by seed, size and hash cost (env SCHOOLSURGE_CACHE_DIR, "
        f"default {DEFAULT_CACHE_DIR})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="roster and data seed")
    parser.add_argument("--size", type=int_in(1, 10_000_000), default=DEFAULT_SIZE, help="number of pupils")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the base URL here once listening")
    add_knob_arguments(parser)


def run_target(args: argparse.Namespace) -> int:
    """Run the platform from parsed arguments; returns a process exit code."""
    try:
        check_bind_host(args.host, args.allow_host)
        profile, settings = resolve(args)
    except (ValueError, SettingsError) as exc:
        print(f"schoolsurge target: {exc}", file=sys.stderr)
        return 2
    cache_dir = args.cache_dir or Path(os.environ.get("SCHOOLSURGE_CACHE_DIR") or DEFAULT_CACHE_DIR)
    try:
        return serve(args.host, args.port, args.db, args.seed, args.size, settings, profile, cache_dir, args.ready_file)
    except (OSError, ValueError) as exc:
        print(f"schoolsurge target: {exc}", file=sys.stderr)
        return 1
