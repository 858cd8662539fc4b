"""Run the reference platform in a child process, for tests and for the run orchestrator.

A separate process keeps the platform's CPU (bcrypt, SQLite, uvicorn) and GIL away from the load generator,
and its ephemeral port comes back through a ready file the child writes once every worker is serving.
Without `db`, the platform runs on a copy of the cached seed inside this object's temporary folder, gone at
stop(); with `db`, on that file, which keeps its data across restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from schoolsurge.child_process import start_in_own_session
from schoolsurge.errors import PlatformStartError
from schoolsurge.platform.oidc_config import ProviderConfig, provider_file
from schoolsurge.platform.security import admin_token_path
from schoolsurge.platform.server import DEFAULT_SEED, DEFAULT_SIZE
from schoolsurge.platform.settings import SSO_PROTOCOLS
from schoolsurge.platform.settings import run_scale as parse_run_scale
from schoolsurge.platform.settings import run_speed as parse_run_speed


class PlatformProcess:
    """`with PlatformProcess(size=60, hash_cost=4, profile="resized") as p: ... p.base_url ...`

    `hash_cost` and `profile` left at None take the platform's defaults (profile undersized-2021, whose
    hash cost is 10). `run_scale` and `run_speed` name the run the platform stands in for (its profile's
    national limits are scaled to it; None: the platform's default, 1 and 1, the national platform). `sso` is
    the single sign-on it serves (None: CAS; "oidc": an OpenID Provider). Other knobs go in `extra_args`, e.g.
    ["--workers", "2", "--max-in-flight", "4"]."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        size: int = DEFAULT_SIZE,
        hash_cost: int | None = None,
        profile: str | None = None,
        db: Path | None = None,
        cache_dir: Path | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        startup_timeout: float = 600.0,  # a first seed of a large roster at cost 10 takes a while
        stop_timeout: float = 10.0,
        extra_args: Sequence[str] = (),
        run_scale: float | None = None,
        run_speed: float | None = None,
        sso: str | None = None,
    ) -> None:
        self.seed, self.size, self.hash_cost, self.profile, self.host = seed, size, hash_cost, profile, host
        # Checked here, with the platform's own rules, so a bad value fails in one line before anything starts.
        for name, value, check in (
            ("run_scale", run_scale, parse_run_scale),
            ("run_speed", run_speed, parse_run_speed),
        ):
            if value is not None:
                try:
                    check(repr(float(value)))
                except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
                    raise ValueError(f"{name}: {error}") from None
        self.run_scale, self.run_speed = run_scale, run_speed
        if sso is not None and sso not in SSO_PROTOCOLS:
            raise ValueError(f"sso: expected one of {', '.join(SSO_PROTOCOLS)}, got {sso!r}")
        self.sso = sso
        self.cache_dir = cache_dir
        self.startup_timeout, self.stop_timeout = startup_timeout, stop_timeout
        self.extra_args = list(extra_args)
        self._tmpdir = Path(tempfile.mkdtemp(prefix="schoolsurge-platform-"))
        self.db = Path(db) if db is not None else self._tmpdir / "platform.sqlite3"
        self.ready_file = self._tmpdir / "ready"
        # Output goes to a file, never a pipe: nobody reads a pipe during a run, and a full one would block.
        self.log_path = Path(log_path) if log_path is not None else self._tmpdir / "platform.log"
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise PlatformStartError("platform is not running")
        return self._base_url

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def admin_token(self) -> str:
        """The token of the admin endpoints (POST /admin/capacity), created by the running platform."""
        if self._base_url is None:
            raise PlatformStartError("platform is not running")
        return admin_token_path(self.db).read_text().strip()

    @property
    def oidc_client_secret(self) -> str:
        """The client secret of the ENT's web client (`ent`) at the running OpenID Provider (`sso="oidc"`)."""
        if self._base_url is None:
            raise PlatformStartError("platform is not running")
        return ProviderConfig.read(provider_file(self.db)).ent_client_secret

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "schoolsurge.platform", "--host", self.host, "--port", "0"]
        cmd += ["--ready-file", str(self.ready_file), "--seed", str(self.seed), "--size", str(self.size)]
        cmd += ["--db", str(self.db)]
        if self.hash_cost is not None:
            cmd += ["--hash-cost", str(self.hash_cost)]
        if self.profile is not None:
            cmd += ["--profile", self.profile]
        if self.cache_dir is not None:
            cmd += ["--cache-dir", str(self.cache_dir)]
        if self.run_scale is not None:
            cmd += ["--run-scale", repr(float(self.run_scale))]
        if self.run_speed is not None:
            cmd += ["--run-speed", repr(float(self.run_speed))]
        if self.sso is not None:
            cmd += ["--sso", self.sso]
        return cmd + self.extra_args

    def start(self) -> PlatformProcess:
        self._tmpdir.mkdir(parents=True, exist_ok=True)  # stop() removed it if this object ran before
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            # Own process group: a terminal's Ctrl-C reaches only the parent, which then stops us in order,
            # and stop() can end the seeding pool's workers along with the server.
            self._proc = start_in_own_session(
                self.command(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
            )
            self._base_url = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> str:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                url = self.ready_file.read_text().strip()
                if url:
                    return url
            code = self._proc.poll()
            if code is not None:
                raise PlatformStartError(f"platform exited with code {code} before it was ready:\n{self.log_tail()}")
            time.sleep(0.05)
        raise PlatformStartError(f"platform not ready after {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after the grace period; returns the exit code (None if never started)."""
        proc, self._proc, self._base_url = self._proc, None, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGTERM)
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc, signal.SIGKILL)
                    proc.wait()
            code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        # The default log lives here too and goes with it: pass log_path to keep it (errors quote its tail).
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        return code

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, for durability tests), then clean up as stop()."""
        if self._proc is not None and self._proc.poll() is None:
            self._signal_group(self._proc, signal.SIGKILL)
            self._proc.wait()
        self.stop()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # the group is the one start_new_session gave this child

    def __enter__(self) -> PlatformProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
