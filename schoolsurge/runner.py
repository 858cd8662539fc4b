"""`schoolsurge run`: platform up, Locust headless over the scenario, results and report kept, platform down.

The locustfile writes the run directory's results and report (as it does for a plain `locust -f`); the
runner first refuses (exit 2) what any Locust process would refuse and what this machine cannot hold, then
creates the directory (so a platform that fails to start is recorded too), starts the embedded platform when
no target is given, runs Locust in its own session, and records how Locust ended. A stop signal at any point
ends every process it started (child_process.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import schoolsurge
from schoolsurge.accounts import CsvAccounts
from schoolsurge.child_process import STOP_SIGNALS, end_process_group, start_in_own_session
from schoolsurge.clients.options import check_client_arguments
from schoolsurge.errors import ParameterError, PlatformStartError, ReportError, RunError, RunTooLargeError
from schoolsurge.models.fleet import FleetFigures, fleet_need, schedule_memory_mb
from schoolsurge.models.population import national_curves
from schoolsurge.models.replay import Replay
from schoolsurge.models.sweep import SweepReplay, SweepSettings, mean_session_s
from schoolsurge.parameters import RunParameters, resolve_parameters
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.server import MAX_SIZE as PLATFORM_MAX_SIZE
from schoolsurge.platform.settings import NATIONAL_LIMITS, PROFILES
from schoolsurge.report import Verdict, judge_run, load_run, write_report
from schoolsurge.report.outcome.health import health, run_refused
from schoolsurge.report.outcome.junit import write_junit
from schoolsurge.report.outcome.served import ServedShare, served_share
from schoolsurge.report.refresh import refresh_index
from schoolsurge.rundir import (
    LOCUST_LOG,
    LOCUST_PREFIX,
    PLATFORM_LOG,
    REPORT,
    RunStatus,
    finish_manifest,
    new_run_dir,
    read_manifest,
    start_manifest,
    update_manifest,
)
from schoolsurge.safety import check_target
from schoolsurge.scenario import Scenario, load_scenario
from schoolsurge.sweep_options import forwarded_sweep_arguments, resolve_sweep

LOCUSTFILE = Path(schoolsurge.__file__).with_name("locustfile.py")
PROFILE_ENV = "SCHOOLSURGE_PROFILE"
LOCUST_GRACE_S = 30  # after the shape ends or Ctrl-C, how long Locust gets to write its results and report
MASTER_BIND_HOST = "127.0.0.1"  # where the master of --processes listens for its (local) workers
FORCED_PROCESSES_PER_CORE = 4  # the most Locust processes a core, even with --force


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
    accounts: Path | None = None  # CSV of test accounts (default: the embedded platform's, from the seed)
    locustfile: Path | None = None  # a locustfile of one's own (default: the surge locustfile)
    client_arguments: Sequence[str] = field(default_factory=list)  # --client ..., --cas-url ..., passed on
    profile: str | None = None  # the embedded platform's capacity profile (default: the scenario's)
    sweep: SweepSettings | None = None  # a capacity sweep instead of the morning
    sweep_capacity: float | None = None  # the target's expected capacity, x the peak (embedded: its profile's)
    junit: Path | None = None  # where to write the verdicts and the run's validity as JUnit XML
    late_after_s: float | None = None  # start delay counted as late (default 1 s)
    drop_after_s: float | None = None  # start delay past which an arrival is dropped (default 60 s)
    monitoring_arguments: Sequence[str] = field(default_factory=list)  # --metrics-port ... (monitoring_options.py)


@dataclass
class RunOutcome:
    run_dir: Path
    report: Path | None
    verdicts: list[Verdict]
    interrupted: bool
    served: ServedShare | None = None
    invalid_reason: str | None = None  # "generator-bound: ..." when the run measured the generator
    refused: str | None = None  # why the loopback guard stopped the run, when it did (manifest `stopped_by`)

    @property
    def slo_met(self) -> bool:
        return all(v.met for v in self.verdicts)

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None


def run(request: RunRequest) -> RunOutcome:
    with _stop_signals_interrupt():
        return _run(request)


def _run(request: RunRequest) -> RunOutcome:
    scenario = load_scenario(request.scenario_path)
    # A choice on the command line (or SCHOOLSURGE_PROFILE, as for `schoolsurge target`) overrides the scenario's.
    profile = _check_profile(request.profile or os.environ.get(PROFILE_ENV) or scenario.platform.profile)
    replay: Replay
    if request.sweep is None:
        parameters = resolve_parameters(
            scenario, request.scale, request.speed, request.seed, request.late_after_s, request.drop_after_s
        )
        replay = Replay(scenario, parameters.scale, parameters.speed)
    else:
        if request.sweep_capacity is None and request.target is None:
            request.sweep_capacity = profile_capacity(scenario, profile)
        parameters, replay = resolve_sweep(
            scenario,
            request.sweep,
            request.sweep_capacity,
            request.scale,
            request.speed,
            request.seed,
            request.late_after_s,
            request.drop_after_s,
        )
    # Everything the Locust processes would refuse, refused here: before the run directory, the platform, a fork.
    if request.target is not None:
        check_target(request.target, request.allow_host)
    sso = check_client_arguments(request.client_arguments, request.allow_host)
    if request.accounts is not None:
        CsvAccounts(request.accounts).require_roles(scenario.personas)
    check_processes(request.processes, request.force)
    check_machine_holds(replay, request.scenario_path, request.force)
    if request.target is None:
        check_platform_holds(replay)
    run_dir = new_run_dir(request.reports_dir, scenario.name)
    start_manifest(
        run_dir,
        request.scenario_path,
        scenario=scenario.name,
        scale=parameters.scale,
        speed=parameters.speed,
        seed=parameters.seed,
        processes=request.processes or 1,
        embedded=request.target is None,
        target=request.target or "embedded",
        sso=sso,
        **({"profile": profile} if request.target is None else {}),
    )
    print(f"schoolsurge: run directory {run_dir}", flush=True)
    code, interrupted = None, False
    try:
        with _platform(request, scenario, profile, replay, parameters.seed, run_dir, sso) as (target, admin_token):
            update_manifest(run_dir, target=target)
            print(f"schoolsurge: {_what_runs(replay)} against {target} (about {replay.duration_s:.0f} s)", flush=True)
            command = _locust_command(request, parameters, target, run_dir)
            code, interrupted = _run_locust(command, admin_token)
    except KeyboardInterrupt:
        interrupted = True
    except PlatformStartError as error:
        finish_manifest(run_dir, RunStatus.FAILED)
        raise RunError(
            f"the embedded platform did not start ({str(error).splitlines()[0]}); see {run_dir / PLATFORM_LOG}"
        ) from None
    outcome = _conclude(run_dir, code, interrupted)
    if request.junit is not None:
        write_junit(request.junit, scenario.name, outcome.verdicts, outcome.invalid_reason)
    if code not in (0, None) and not interrupted:
        raise RunError(f"Locust exited with status {code}; see {run_dir / LOCUST_LOG}")
    return outcome


def _conclude(run_dir: Path, code: int | None, interrupted: bool) -> RunOutcome:
    """Record how the run ended and whether it is valid; rebuild the report if Locust could not write it; judge
    the SLOs."""
    written = read_manifest(run_dir).status
    if interrupted:
        status = RunStatus.INTERRUPTED
    elif code not in (0, None):
        status = RunStatus.FAILED
    else:
        status = RunStatus(written) if written in tuple(RunStatus) else RunStatus.FAILED
    if status == RunStatus.RUNNING:  # Locust ended without writing its results
        status = RunStatus.FAILED
    refused = run_refused(finish_manifest(run_dir, status, locust_exit_code=code))
    try:
        data = load_run(run_dir)  # once, for the validity, the report and the verdicts
    except ReportError as error:
        print(f"schoolsurge: no report: {error}", file=sys.stderr)
        return RunOutcome(run_dir, None, [], interrupted, refused=refused)
    invalid = health(data).invalid_reason()
    data.manifest = update_manifest(run_dir, valid=invalid is None, invalid_reason=invalid)
    report = run_dir / REPORT
    if written != status or not report.exists():
        report = write_report(data)  # the locustfile's report does not say how the run really ended
    refresh_index(run_dir.parent)
    return RunOutcome(run_dir, report, judge_run(data), interrupted, served_share(data), invalid, refused)


def _what_runs(replay: Replay) -> str:
    scale = f"scale {replay.scale:.3g}, speed {replay.speed:g}x"
    if isinstance(replay, SweepReplay):
        return (
            f"capacity sweep: {len(replay.rates)} steps of {replay.rates[0]:.2f} to {replay.rates[-1]:.2f} arrivals/s "
            f"(run terms; {replay.multiples[0]:.3g} to {replay.multiples[-1]:.3g} x the national peak), each settled "
            f"{replay.settle_s:.0f} s and measured {replay.measure_s:g} s, at {scale} (load fraction "
            f"{replay.load_fraction:.3g})"
        )
    return f"replaying {replay.scenario.window.start}-{replay.scenario.window.end} at {scale}"


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ParameterError(f"unknown platform profile {profile!r}; choose one of {', '.join(sorted(PROFILES))}")
    return profile


def profile_capacity(scenario: Scenario, profile: str) -> float:
    """What the embedded platform's profile holds at a constant arrival rate, as a multiple of the scenario's
    national peak arrival rate: the lowest of its login rate over the peak login rate, its request rate over the
    peak request rate, and its sessions over the sessions a constant rate keeps open (rate x mean session)."""
    limits = NATIONAL_LIMITS[profile]
    curves = national_curves(scenario)
    peak_logins = float(curves.per_minute(curves.total_arrivals()).max())
    held = [
        limits["national_login_rate"] / peak_logins,
        limits["national_request_rate"] / float(curves.total_requests().max()),
    ]
    if limits["national_sessions"] is not None:
        held.append(limits["national_sessions"] / (peak_logins * mean_session_s(scenario)))
    return min(held)


@contextlib.contextmanager
def _platform(
    request: RunRequest, scenario: Scenario, profile: str, replay: Replay, seed: int, run_dir: Path, sso: str
) -> Iterator[tuple[str, str | None]]:
    """The target URL: the user's (checked) or an embedded platform sized for this replay."""
    if request.target is not None:  # already checked by run(), before the run directory was made
        yield request.target.rstrip("/"), request.admin_token
        return
    print(
        f"schoolsurge: starting the reference platform ({replay.platform_pupils} pupils, "
        f"hash cost {scenario.platform.hash_cost}; a first start seeds its database, "
        f"progress in {run_dir / PLATFORM_LOG})",
        flush=True,
    )
    with PlatformProcess(
        seed=seed,
        size=replay.platform_pupils,
        hash_cost=scenario.platform.hash_cost,
        profile=profile,
        log_path=run_dir / PLATFORM_LOG,
        # The platform's capacity is national: it scales it to the run it stands in for.
        run_scale=replay.scale,
        run_speed=replay.speed,
        sso=sso,  # the single sign-on the run's client speaks
    ) as platform:
        yield platform.base_url, platform.admin_token


def _locust_command(request: RunRequest, parameters: RunParameters, target: str, run_dir: Path) -> list[str]:
    locustfile = request.locustfile or LOCUSTFILE
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary"]
    command += ["--host", target, "--csv", str(run_dir / LOCUST_PREFIX), "--csv-full-history"]
    command += ["--logfile", str(run_dir / LOCUST_LOG), "--exit-code-on-error", "0"]
    command += ["--scenario", str(request.scenario_path), "--run-dir", str(run_dir)]
    command += ["--scale", repr(parameters.scale), "--speed", repr(parameters.speed), "--seed", str(parameters.seed)]
    command += ["--late-after", repr(parameters.late_after_s), "--drop-after", repr(parameters.drop_after_s)]
    if request.allow_host:
        command += ["--allow-host", request.allow_host]
    if request.processes:
        # A free master port, so that two runs with --processes on one machine do not collide on Locust's 5557;
        # on loopback only, as its workers are local: Locust's master has no authentication (docs/fleet.md).
        port = str(free_loopback_port())
        command += ["--processes", str(request.processes), "--master-bind-host", MASTER_BIND_HOST]
        command += ["--master-bind-port", port, "--master-port", port]
    if request.accounts:
        command += ["--accounts", str(request.accounts)]
    if request.sweep is not None:
        command += forwarded_sweep_arguments(request.sweep, request.sweep_capacity)
    return command + list(request.monitoring_arguments) + list(request.client_arguments)


def _run_locust(command: list[str], admin_token: str | None) -> tuple[int, bool]:
    """Run Locust in its own session so that Ctrl-C reaches it once, through us; returns (code, interrupted).
    The admin token goes through the environment (Locust reads LOCUST_<OPTION>), never the command line."""
    env = {**os.environ, "LOCUST_ADMIN_TOKEN": admin_token} if admin_token else None
    with _locust_session(command, env) as process:
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


@contextlib.contextmanager
def _locust_session(command: list[str], env: dict[str, str] | None) -> Iterator[subprocess.Popen[bytes]]:
    """Locust in a session of its own, and nothing of that session left once it has ended: the workers of
    --processes are forked into it, and a master stopped while it forks them (a stop signal during the start),
    or killed after the grace, leaves them running."""
    process = start_in_own_session(command, env=env)
    try:
        yield process
    finally:
        with _signals_ignored():
            end_process_group(process)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`, a container stop) and SIGHUP (a closed terminal) stop a run the way Ctrl-C
    does: load stopped, what was measured kept and reported, children gone."""
    with _signal_handlers(dict.fromkeys(STOP_SIGNALS, _interrupt)):
        yield


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    with _signal_handlers(dict.fromkeys((signal.SIGINT, *STOP_SIGNALS), signal.SIG_IGN)):
        yield


@contextlib.contextmanager
def _signal_handlers(handlers: dict[signal.Signals, object]) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread; a library caller keeps its own
        return
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}  # type: ignore[arg-type]
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_processes(processes: int | None, force: bool, cores: int | None = None) -> None:
    """Refuse more Locust processes than the cores (more only share them, and a run that starves measures the
    laptop), unless forced; and beyond FORCED_PROCESSES_PER_CORE a core even when forced: each process is
    forked before anything checks it, and thousands would take the machine down."""
    cores = cores or usable_cores()
    if processes is None or processes <= cores:
        return
    ceiling = cores * FORCED_PROCESSES_PER_CORE
    if processes > ceiling:
        raise RunTooLargeError(
            f"--processes {processes}: this machine has {cores} cores, and runs {ceiling} Locust processes at most "
            f"({FORCED_PROCESSES_PER_CORE} a core, even with --force); give --processes {cores}, or run a fleet "
            "of master and workers (docs/fleet.md)"
        )
    if not force:
        raise RunTooLargeError(
            f"--processes {processes}: this machine has {cores} cores, one Locust process a core; give "
            f"--processes {cores}, or pass --force to share the cores (up to {ceiling} processes)"
        )


def check_platform_holds(replay: Replay) -> None:
    """Refuse a run whose embedded platform would need more accounts than it seeds (it would not start)."""
    if replay.platform_pupils > PLATFORM_MAX_SIZE:
        raise RunTooLargeError(
            f"this run needs {replay.platform_pupils:,} pupils' accounts (the scenario's pupils x --scale "
            f"{replay.scale:g}), the embedded platform holds {PLATFORM_MAX_SIZE:,} at most: lower --scale, or "
            "load your own platform with --target"
        )


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's or taskset's share), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
    cores = usable_cores()
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


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def available_memory_mb() -> float | None:
    """MemAvailable from /proc/meminfo (Linux), None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
