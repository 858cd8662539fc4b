"""`schoolsurge run`: platform up, Locust headless over the scenario, results and report kept, platform down.

The locustfile writes the run directory's results and report (as it does for a plain `locust -f`); the
runner creates the directory first (so a platform that fails to start is recorded too), starts the embedded
platform when no target is given, runs Locust in its own session, and records how Locust ended.
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
from schoolsurge.clients.options import load_client_class
from schoolsurge.errors import ParameterError, PlatformStartError, ReportError, RunError, RunTooLargeError
from schoolsurge.models.fleet import FleetFigures, fleet_need, schedule_memory_mb
from schoolsurge.models.population import national_curves
from schoolsurge.models.replay import Replay
from schoolsurge.models.sweep import SweepReplay, SweepSettings, mean_session_s
from schoolsurge.parameters import RunParameters, resolve_parameters
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.settings import NATIONAL_LIMITS, PROFILES
from schoolsurge.report import Verdict, judge_run, load_run, write_report
from schoolsurge.report.health import health
from schoolsurge.report.junit import write_junit
from schoolsurge.report.outcome import ServedShare, served_share
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
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
PROFILE_ENV = "SCHOOLSURGE_PROFILE"
LOCUST_GRACE_S = 30  # after the shape ends or Ctrl-C, how long Locust gets to write its results and report


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
    if request.target is not None:
        check_target(request.target, request.allow_host)  # refuse before creating anything
    sso = _check_client(request.client_arguments)
    check_machine_holds(replay, request.scenario_path, request.force)
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
    written = read_manifest(run_dir).get("status")
    if interrupted:
        status = RunStatus.INTERRUPTED
    elif code not in (0, None):
        status = RunStatus.FAILED
    else:
        status = RunStatus(written) if written in tuple(RunStatus) else RunStatus.FAILED
    if status == RunStatus.RUNNING:  # Locust ended without writing its results
        status = RunStatus.FAILED
    finish_manifest(run_dir, status, locust_exit_code=code)
    try:
        data = load_run(run_dir)  # once, for the validity, the report and the verdicts
    except ReportError as error:
        print(f"schoolsurge: no report: {error}", file=sys.stderr)
        return RunOutcome(run_dir, None, [], interrupted)
    invalid = health(data).invalid_reason()
    data.manifest.update(update_manifest(run_dir, valid=invalid is None, invalid_reason=invalid))
    report = run_dir / REPORT
    if written != status or not report.exists():
        report = write_report(data)  # the locustfile's report does not say how the run really ended
    refresh_index(run_dir.parent)
    return RunOutcome(run_dir, report, judge_run(data), interrupted, served_share(data), invalid)


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


def _check_client(client_arguments: Sequence[str]) -> str:
    """Refuse an unusable --client, or one of another single sign-on than --sso, before anything starts (Locust
    would only fail in its init); returns the run's single sign-on protocol (--sso, default cas)."""
    arguments = list(client_arguments)
    sso = arguments[arguments.index("--sso") + 1] if "--sso" in arguments else "cas"
    if "--client" in arguments:
        load_client_class(arguments[arguments.index("--client") + 1], sso)
    return sso


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
        # A free master port, so that two runs with --processes on one machine do not collide on Locust's 5557.
        port = str(free_loopback_port())
        command += ["--processes", str(request.processes), "--master-bind-port", port, "--master-port", port]
    if request.accounts:
        command += ["--accounts", str(request.accounts)]
    if request.sweep is not None:
        command += forwarded_sweep_arguments(request.sweep, request.sweep_capacity)
    return command + list(request.monitoring_arguments) + list(request.client_arguments)


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
