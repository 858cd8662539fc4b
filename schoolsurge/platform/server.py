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
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess

from schoolsurge.platform.db import NotWritable, check_writable, connect, upgrade_runtime_schema
from schoolsurge.platform.oidc_config import ProviderConfig, provider_file
from schoolsurge.platform.security import admin_token_path, run_state_dir, token_hash, write_admin_token
from schoolsurge.platform.seed import DEFAULT_CACHE_DIR, prepare_database
from schoolsurge.platform.services import ServiceRegistry, add_service_arguments, resolve_service_options
from schoolsurge.platform.settings import Settings, SettingsError, add_knob_arguments, int_in, resolve
from schoolsurge.platform.worker import WORKER_ENV, WorkerConfig
from schoolsurge.safety import is_loopback_host

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_SEED = 2021
DEFAULT_SIZE = 1270
MAX_SIZE = 10_000_000  # pupils' accounts the reference platform seeds at most (docs/fleet.md)
DEFAULT_HASH_COST = Settings().hash_cost
WORKER_READY_TIMEOUT_S = 120.0
HEALTHCHECK_EVERY_S = 0.5  # how often the supervisor checks its workers (uvicorn's own tick)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_TOKEN_ENV = "SCHOOLSURGE_METRICS_TOKEN"
MIN_METRICS_TOKEN = 16  # characters: shorter ones can be guessed


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

    def run(self) -> None:
        """uvicorn's loop (Multiprocess.run), woken by a signal at once: uvicorn's handlers only queue the signal
        for its next tick, so a stop waited up to HEALTHCHECK_EVERY_S more than the workers took to end."""
        if threading.current_thread() is not threading.main_thread():
            super().run()  # a wakeup fd can only be set from the main thread
            return
        wake, woken = socket.socketpair()
        for end in (wake, woken):
            end.setblocking(False)
        previous = signal.set_wakeup_fd(woken.fileno())
        try:
            self.init_processes()
            while not self.should_exit.is_set():
                select.select([wake], [], [], HEALTHCHECK_EVERY_S)
                with contextlib.suppress(BlockingIOError):
                    wake.recv(256)  # the signal numbers: the handlers have queued them already
                self.handle_signals()
                self.keep_subprocess_alive()
            self.terminate_all()
            self.join_all()
        finally:
            signal.set_wakeup_fd(previous)
            wake.close()
            woken.close()

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
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another platform is serving {db_path}; give this one its own --db") from None
        yield handle


def check_folder_writable(folder: Path) -> None:
    """Refuse at once, naming the folder, if no file can be created there: SQLite keeps DB-wal and DB-shm
    beside the database, and the server its lock, token and state files."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".schoolsurge-probe-"):
            pass
    except OSError as error:
        raise NotWritable(
            f"cannot create files in {folder} ({error.strerror}); give --db a file in a writable folder"
        ) from None


def run_limits(cfg: Settings) -> str:
    """The run the platform stands in for and the limits it gives, for the log."""

    def rate(value: float | None, unit: str) -> str:
        return f"{unit} unlimited" if value is None else f"{value:.4g} {unit}/s"

    sessions = "unlimited" if cfg.run_sessions is None else str(cfg.run_sessions)
    return (
        f"run scale {cfg.run_scale:g} x speed {cfg.run_speed:g}: {rate(cfg.run_login_rate, 'logins')}, "
        f"{rate(cfg.run_request_rate, 'requests')}, sessions {sessions}, waits up to "
        f"{cfg.run_login_timeout:.4g} s (login) / {cfg.run_request_timeout:.4g} s (request), "
        f"session idle {cfg.run_session_idle:.4g} s"
    )


def _log(message: str) -> None:
    print(f"[platform] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class AccessOptions:
    """Who may use the platform besides its bound address: more names for the ENT and other CAS services
    (services.py), and the bearer token /metrics asks for (None: /metrics is open)."""

    public_urls: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    metrics_token: str | None = None


@contextlib.contextmanager
def _own_run_state(db_path: Path) -> Iterator[Path]:
    """The state folder (metrics, incident) and admin token of the server holding db_path's lock, removed when
    it stops. Entered only once the lock is held: a refused server must never remove a running one's."""
    state_dir = run_state_dir(db_path)
    try:
        yield state_dir
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        admin_token_path(db_path).unlink(missing_ok=True)


def _prepare_own_database(db_path: Path, cache_dir: Path, seed: int, size: int, hash_cost: int) -> None:
    prepare_database(db_path, cache_dir, seed, size, hash_cost, _log)
    check_writable(db_path)
    conn = connect(db_path)
    try:
        upgrade_runtime_schema(conn)
    finally:
        conn.close()


def _fresh_run_state(db_path: Path, state_dir: Path) -> str:
    """An empty state folder and a new admin token file; returns the token."""
    shutil.rmtree(state_dir, ignore_errors=True)  # metrics of an earlier run must not add up with ours
    (state_dir / "metrics").mkdir(parents=True)
    token = write_admin_token(db_path)
    # The file, never the token: this log is copied into run directories.
    _log(f"admin token (Authorization: Bearer ...) written to {admin_token_path(db_path)}")
    return token


def _new_oidc_provider(cfg: Settings, db_path: Path, ent_base_urls: tuple[str, ...]) -> ProviderConfig | None:
    """In OpenID Connect mode, a new provider (issuer: the first base URL; key and secret: random), written for
    the workers in the state folder, never logged."""
    if cfg.sso != "oidc":
        return None
    provider = ProviderConfig.create(ent_base_urls)
    provider.write(provider_file(db_path))
    return provider


def _run_workers(cfg: Settings, sock: socket.socket, on_ready: Callable[[], None]) -> int:
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
    access: AccessOptions | None = None,
) -> int:
    """Prepare the database, bind host:port (0 = ephemeral), run the workers until SIGINT/SIGTERM.
    Returns an exit code."""
    cfg, access = settings or Settings(), access or AccessOptions()
    if threading.current_thread() is threading.main_thread():
        # Until the supervisor installs its own handlers, SIGTERM unwinds so an interrupted seed cleans up.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Without --db: a scratch copy of the cached seed, gone at exit.
    scratch = None if db is not None else Path(tempfile.mkdtemp(prefix="schoolsurge-platform-db-"))
    db_path = Path(db) if scratch is None else scratch / "platform.sqlite3"
    try:
        check_folder_writable(db_path.parent)
        with _exclusive(db_path), _own_run_state(db_path) as state_dir:
            if ready_file is not None:
                Path(ready_file).unlink(missing_ok=True)  # a stale file would announce the wrong port
            _prepare_own_database(db_path, cache_dir, seed, size, cfg.hash_cost)
            token = _fresh_run_state(db_path, state_dir)
            sock, base_url = bind_socket(host, port)
            services = ServiceRegistry.build((base_url, *access.public_urls), access.services)
            metrics_token_hash = token_hash(access.metrics_token) if access.metrics_token else None
            oidc = _new_oidc_provider(cfg, db_path, (*access.public_urls, base_url))
            os.environ[MULTIPROC_ENV] = str(state_dir / "metrics")
            os.environ[WORKER_ENV] = WorkerConfig(
                db_path,
                cfg,
                state_dir / "capacity.json",
                token_hash(token),
                services,
                metrics_token_hash,
                None if oidc is None else provider_file(db_path),
            ).to_env()

            def on_ready() -> None:
                _log(
                    f"listening on {base_url} (profile {profile}: {cfg.workers} worker(s) x {cfg.max_in_flight} "
                    f"in flight + {cfg.queue_length} queued, bcrypt cost {cfg.hash_cost}, database {db_path}; "
                    f"{run_limits(cfg)})"
                )
                if oidc is None:
                    _log(f"CAS issues tickets to: {', '.join(sorted(services.ent_callbacks | services.others))}")
                else:
                    _log(
                        f"OpenID Provider {oidc.issuer} (discovery: {oidc.issuer}/.well-known/openid-configuration); "
                        f"the ENT's redirect URIs: {', '.join(oidc.ent_redirect_uris)}"
                    )
                if access.metrics_token is None and not is_loopback_host(host):
                    _log(f"/metrics is open to anyone who reaches {host}; --metrics-token protects it")
                if ready_file is not None:
                    write_ready_file(Path(ready_file), base_url)

            return _run_workers(cfg, sock, on_ready)
    finally:
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
    parser.add_argument("--size", type=int_in(1, MAX_SIZE), default=DEFAULT_SIZE, help="number of pupils")
    parser.add_argument("--ready-file", type=Path, default=None, help="write the base URL here once listening")
    add_service_arguments(parser)
    parser.add_argument(
        "--metrics-token",
        default=None,
        help=f"require this bearer token (or the admin token) on /metrics (env {METRICS_TOKEN_ENV}, safer: a "
        "command line is visible to every local user; default: /metrics is open)",
    )
    add_knob_arguments(parser)


def resolve_access(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> AccessOptions:
    """Public URLs, services and metrics token from the options, else the environment; ValueError if unusable."""
    env = os.environ if environ is None else environ
    public_urls, services = resolve_service_options(args, env)
    metrics_token = getattr(args, "metrics_token", None) or env.get(METRICS_TOKEN_ENV) or None
    if metrics_token is not None and (len(metrics_token) < MIN_METRICS_TOKEN or metrics_token != metrics_token.strip()):
        raise ValueError(
            f"the metrics token must be at least {MIN_METRICS_TOKEN} characters without surrounding spaces; "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return AccessOptions(public_urls, services, metrics_token)


def run_target(args: argparse.Namespace) -> int:
    """Run the platform from parsed arguments; returns a process exit code."""
    try:
        check_bind_host(args.host, args.allow_host)
        profile, settings = resolve(args)
        access = resolve_access(args)
    except (ValueError, SettingsError) as exc:
        print(f"schoolsurge target: {exc}", file=sys.stderr)
        return 2
    cache_dir = args.cache_dir or Path(os.environ.get("SCHOOLSURGE_CACHE_DIR") or DEFAULT_CACHE_DIR)
    try:
        return serve(
            args.host, args.port, args.db, args.seed, args.size, settings, profile, cache_dir, args.ready_file, access
        )
    except (OSError, ValueError) as exc:
        print(f"schoolsurge target: {exc}", file=sys.stderr)
        return 1
