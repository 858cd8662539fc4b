"""`schoolsurge run`: platform up, Locust headless over the scenario, results and report kept, platform down."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import schoolsurge
from schoolsurge.models.fleet import FleetFigures, fleet_need, schedule_memory_mb
from schoolsurge.models.replay import Replay
from schoolsurge.platform.process import PlatformError as PlatformStartError
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.report import ReportError, load_run, write_report
from schoolsurge.rundir import LOCUST_PREFIX, new_run_dir, start_manifest, update_manifest
from schoolsurge.safety import check_target
from schoolsurge.scenario import Scenario, load_scenario
from schoolsurge.slo import Verdict, judge

LOCUSTFILE = Path(schoolsurge.__file__).with_name("surge.py")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
LOCUST_GRACE_S = 30  # after the shape ends or Ctrl-C, how long Locust gets to write its CSV files


class RunError(RuntimeError):
    """The run could not proceed; the message is one line saying what to do."""


class RunTooLargeError(ValueError):
    """The plan says this machine cannot hold the run; the message says what to do instead."""


@dataclass
class RunRequest:
    scenario_path: Path
    target: str | None  # None: start the embedded reference platform
    scale: float | None = None
    speed: float | None = None
    seed: int | None = None
    processes: int | None = None
    reports_dir: Path = Path("reports")
    allow_host: str | None = None
    fail_on_slo: bool = False
    admin_token: str | None = None  # of the user's own platform, for capacity-loss incidents
    force: bool = False  # run even when the plan says this machine cannot hold it


@dataclass
class RunOutcome:
    run_dir: Path
    report: Path | None
    verdicts: list[Verdict]
    interrupted: bool

    @property
    def slo_met(self) -> bool:
        return all(v.met for v in self.verdicts)


@contextlib.contextmanager
def _platform(
    request: RunRequest, scenario: Scenario, replay: Replay, seed: int, run_dir: Path
) -> Iterator[tuple[str, str | None]]:
    """The target URL: the user's (checked) or an embedded platform sized for this replay."""
    if request.target is not None:  # already checked by run(), before the run directory was made
        yield request.target.rstrip("/"), request.admin_token
        return
    print(
        f"schoolsurge: starting the reference platform ({replay.platform_pupils} pupils, "
        f"hash cost {scenario.platform.hash_cost}; a first start seeds its database, "
        f"progress in {run_dir / 'platform.log'})",
        flush=True,
    )
    with PlatformProcess(
        seed=seed,
        size=replay.platform_pupils,
        hash_cost=scenario.platform.hash_cost,
        profile=scenario.platform.profile,
        log_path=run_dir / "platform.log",
    ) as platform:
        yield platform.base_url, platform.admin_token


def _locust_command(request: RunRequest, replay: Replay, seed: int, target: str, run_dir: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        target,
        "--csv",
        str(run_dir / LOCUST_PREFIX),
        "--csv-full-history",
        "--logfile",
        str(run_dir / "locust.log"),
        "--exit-code-on-error",
        "0",
        "--scenario",
        str(request.scenario_path),
        "--scale",
        repr(replay.scale),
        "--speed",
        repr(replay.speed),
        "--seed",
        str(seed),
        "--run-dir",
        str(run_dir),
    ]
    if request.allow_host:
        command += ["--allow-host", request.allow_host]
    if request.processes:
        command += ["--processes", str(request.processes)]
    return command


def _run_locust(command: list[str], admin_token: str | None) -> tuple[int, bool]:
    """Run Locust in its own session so that Ctrl-C reaches it once, through us; returns (code, interrupted).
    The admin token goes through the environment (Locust reads LOCUST_<OPTION>), never the command line."""
    env = {**os.environ, "LOCUST_ADMIN_TOKEN": admin_token} if admin_token else None
    process = subprocess.Popen(command, start_new_session=True, env=env)
    try:
        return process.wait(), False
    except KeyboardInterrupt:
        print("\nschoolsurge: interrupted; stopping Locust and keeping what was measured", flush=True)
        with _signals_ignored():  # a second Ctrl-C or SIGTERM must not cut the orderly stop short
            process.send_signal(signal.SIGINT)
            try:
                return process.wait(timeout=LOCUST_GRACE_S), True
            except subprocess.TimeoutExpired:
                process.kill()
                return process.wait(), True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`, a container stop) and SIGHUP (a closed terminal) stop a run the way Ctrl-C
    does: load stopped, what was measured kept and reported, children gone."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; a library caller keeps its own
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, *STOP_SIGNALS)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_machine_holds(replay: Replay, scenario_path: Path, force: bool) -> None:
    """Refuse a run the plan says this machine cannot hold (more processes than cores, more memory than is
    available), unless forced: a run that swaps or starves measures the laptop, not the platform."""
    curves = replay.national
    need = fleet_need(
        float(curves.total_requests().max()) * replay.load_fraction,
        float(curves.total_concurrent().max()) * replay.scale,
        FleetFigures(),
    )
    memory_mb = need.memory_mb + schedule_memory_mb(replay.people, need.workers)
    cores = os.cpu_count() or 1
    available_mb = available_memory_mb()
    too_many = need.workers > cores
    too_much = available_mb is not None and memory_mb > available_mb
    if force or not (too_many or too_much):
        return
    fits = min(cores / need.workers, (available_mb / memory_mb) if available_mb else 1.0)
    suggestion = float(f"{replay.scale * fits * 0.8:.1g}")
    have = f"{cores} cores" + (f" and {available_mb / 1000:,.1f} GB available" if available_mb else "")
    raise RunTooLargeError(
        f"this run needs {need.workers} Locust processes and {memory_mb / 1000:,.1f} GB "
        f"(schoolsurge plan {scenario_path} --scale {replay.scale:g} --speed {replay.speed:g}), this "
        f"machine has {have}: lower --scale (about {suggestion:g} fits), run a fleet of master and workers "
        "(docs/engine.md), or pass --force"
    )


def available_memory_mb() -> float | None:
    """MemAvailable from /proc/meminfo (Linux), None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def run(request: RunRequest) -> RunOutcome:
    with _stop_signals_interrupt():
        return _run(request)


def _run(request: RunRequest) -> RunOutcome:
    scenario = load_scenario(request.scenario_path)
    seed = request.seed if request.seed is not None else scenario.run.seed
    if seed < 0:
        raise RunTooLargeError(f"seed must be 0 or more, got {seed}")
    try:
        replay = Replay(
            scenario,
            request.scale if request.scale is not None else scenario.run.scale,
            request.speed if request.speed is not None else scenario.run.speed,
        )
    except ValueError as error:
        raise RunTooLargeError(f"{error}; pass --scale in (0, 1] and a positive --speed") from None
    if request.target is not None:
        check_target(request.target, request.allow_host)  # refuse before creating anything
    check_machine_holds(replay, request.scenario_path, request.force)
    run_dir = new_run_dir(request.reports_dir, scenario.name)
    start_manifest(
        run_dir,
        request.scenario_path,
        scenario=scenario.name,
        scale=replay.scale,
        speed=replay.speed,
        seed=seed,
        processes=request.processes or 1,
        embedded=request.target is None,
        target=request.target or "embedded",
    )
    print(f"schoolsurge: run directory {run_dir}", flush=True)
    code, interrupted, status = None, False, "failed"
    try:
        with _platform(request, scenario, replay, seed, run_dir) as (target, admin_token):
            update_manifest(run_dir, target=target)
            print(
                f"schoolsurge: replaying {scenario.window.start}-{scenario.window.end} at scale "
                f"{replay.scale:g}, speed {replay.speed:g}x against {target} "
                f"(about {replay.duration_s:.0f} s)",
                flush=True,
            )
            code, interrupted = _run_locust(_locust_command(request, replay, seed, target, run_dir), admin_token)
        status = "interrupted" if interrupted else "completed" if code == 0 else "failed"
    except KeyboardInterrupt:
        interrupted, status = True, "interrupted"
    except PlatformStartError as error:
        raise RunError(
            f"the embedded platform did not start ({str(error).splitlines()[0]}); see {run_dir / 'platform.log'}"
        ) from None
    finally:
        update_manifest(
            run_dir,
            status=status,
            locust_exit_code=code,
            ended_at=datetime.now(UTC).isoformat(timespec="seconds"),
            ended_unix=time.time(),
        )
    report, verdicts = None, []
    try:
        data = load_run(run_dir)  # once, for both the report and the verdicts
        report = write_report(data)
        verdicts = judge(data.totals(), scenario.slo)
    except ReportError as error:
        print(f"schoolsurge: no report: {error}", file=sys.stderr)
    if code not in (0, None) and not interrupted:
        raise RunError(f"Locust exited with status {code}; see {run_dir / 'locust.log'}")
    return RunOutcome(run_dir, report, verdicts, interrupted)
