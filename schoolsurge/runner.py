"""`schoolsurge run` and `schoolsurge capacity`: platform up, Locust headless over the run spec, results and report
kept, platform down.

    outcome = start(build_spec(options, Command.RUN), Start.from_options(options))   # the command line
    outcome = run(RunRequest(scenario_path=..., target=None, speed=240))             # a library caller

The runner first refuses (exit 2) what this machine cannot hold (the spec has refused what any Locust process
would), then creates the run directory (so a platform that fails to start is recorded too) and writes the spec
into it, starts the embedded platform when no target is given, runs Locust in its own session on that spec
(`--run-spec`: the Locust processes read the run's options there, not on their command line), and concludes
the run once Locust has exited (conclude.py). A stop signal at any point ends every process it started
(child_process.py).
"""

from __future__ import annotations

import argparse
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
from typing import Any

import schoolsurge
from schoolsurge.accounts import CsvAccounts
from schoolsurge.child_process import STOP_SIGNALS, end_process_group, start_in_own_session
from schoolsurge.conclude import LocustExit, RunOutcome, conclude
from schoolsurge.errors import ClientError, PlatformStartError, RunError, RunTooLargeError
from schoolsurge.models.fleet import FleetFigures, fleet_need, schedule_memory_mb
from schoolsurge.models.replay import Replay
from schoolsurge.models.sweep import SweepReplay, SweepSettings
from schoolsurge.options import (
    DEFAULT_REPORTS_DIR,
    OPTIONS,
    Command,
    Section,
    given,
    options_for,
    parse_section_arguments,
)
from schoolsurge.parameters import DRAIN_LIMIT_S
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.server import MAX_SIZE as PLATFORM_MAX_SIZE
from schoolsurge.rundir import (
    LOCUST_LOG,
    LOCUST_PREFIX,
    PLATFORM_LOG,
    RUN_SPEC,
    RunStatus,
    finish_manifest,
    new_run_dir,
    start_manifest,
    update_manifest,
)
from schoolsurge.scenario import Scenario, load_scenario
from schoolsurge.spec import RunSpec, build_spec, secret_environment, write_spec
from schoolsurge.spec import profile_capacity as profile_capacity  # where it was: tests and callers import it here

__all__ = ["RunOutcome", "RunRequest", "Start", "run", "start"]

LOCUSTFILE = Path(schoolsurge.__file__).with_name("locustfile.py")
LOCUST_GRACE_S = 30  # after the shape ends or Ctrl-C, how long Locust gets to write its results
MASTER_BIND_HOST = "127.0.0.1"  # where the master of --processes listens for its (local) workers
FORCED_PROCESSES_PER_CORE = 4  # the most Locust processes a core, even with --force


@dataclass(frozen=True)
class Start:
    """How `schoolsurge` starts and ends a run (the option table's START section), and the admin token of the
    user's own platform, which no file or command line holds."""

    reports_dir: Path = DEFAULT_REPORTS_DIR
    force: bool = False  # run even when the plan says this machine cannot hold it
    locustfile: Path | None = None  # a locustfile of one's own (default: the surge locustfile)
    junit: Path | None = None  # where to write the verdicts and the run's validity as JUnit XML
    fail_on_slo: bool = False
    admin_token: str | None = None  # of the user's own platform, for capacity-loss incidents

    @classmethod
    def from_options(cls, options: Any, admin_token: str | None = None) -> Start:
        started = {o.dest: given(options, o.dest) for o in OPTIONS if o.section is Section.START}
        return cls(**started, admin_token=admin_token)


@dataclass
class RunRequest:
    """A run as a library caller asks for it: what `schoolsurge run` (or, with `sweep`, `schoolsurge capacity`)
    takes as options; None: the option's default."""

    scenario_path: Path
    target: str | None  # None: start the embedded reference platform
    scale: float | None = None
    speed: float | None = None
    seed: int | None = None
    processes: int | None = None
    reports_dir: Path = DEFAULT_REPORTS_DIR
    allow_host: str | None = None
    fail_on_slo: bool = False
    admin_token: str | None = None  # of the user's own platform, for capacity-loss incidents
    force: bool = False  # run even when the plan says this machine cannot hold it
    accounts: Path | None = None  # CSV of test accounts (default: the embedded platform's, from the seed)
    locustfile: Path | None = None  # a locustfile of one's own (default: the surge locustfile)
    client_arguments: Sequence[str] = field(default_factory=list)  # --client ..., --cas-url ... (options.py)
    profile: str | None = None  # the embedded platform's capacity profile (default: the scenario's)
    sweep: SweepSettings | None = None  # a capacity sweep instead of the morning
    sweep_capacity: float | None = None  # the target's expected capacity, x the peak (embedded: its profile's)
    junit: Path | None = None  # where to write the verdicts and the run's validity as JUnit XML
    late_after_s: float | None = None  # start delay counted as late
    drop_after_s: float | None = None  # start delay past which an arrival is dropped
    drain_limit_s: float = DRAIN_LIMIT_S  # a morning's: wall seconds after its window before the test ends
    monitoring_arguments: Sequence[str] = field(default_factory=list)  # --metrics-port ... (options.py)

    @property
    def command(self) -> Command:
        return Command.RUN if self.sweep is None else Command.CAPACITY

    def options(self) -> argparse.Namespace:
        """The options the command line would have parsed for this request."""
        arguments = [*self.client_arguments, *self.monitoring_arguments]
        try:
            options = parse_section_arguments(arguments, self.command, Section.CLIENT, Section.MONITORING)
        except argparse.ArgumentError as error:
            raise ClientError(str(error)) from None
        for option in options_for(self.command, Section.SWEEP):
            value = self.sweep_capacity if option.dest == "sweep_capacity" else getattr(self.sweep, option.spec_field)
            setattr(options, option.dest, value)
        same_name = ("target", "scale", "speed", "seed", "processes", "reports_dir", "allow_host", "fail_on_slo")
        same_name += ("force", "accounts", "locustfile", "profile", "junit")
        vars(options).update({dest: getattr(self, dest) for dest in same_name})
        vars(options).update(scenario=self.scenario_path, late_after=self.late_after_s, drop_after=self.drop_after_s)
        options.drain_limit = self.drain_limit_s
        return options


def run(request: RunRequest) -> RunOutcome:
    options = request.options()
    return start(build_spec(options, request.command), Start.from_options(options, request.admin_token))


def start(spec: RunSpec, how: Start) -> RunOutcome:
    """Run the spec (built by build_spec for `schoolsurge run` or `capacity`) and conclude it."""
    with _stop_signals_interrupt():
        return _start(spec, how)


def _start(spec: RunSpec, how: Start) -> RunOutcome:
    scenario = load_scenario(spec.scenario)
    replay = spec.replay(scenario)
    # What this machine cannot hold, refused here: before the run directory, the platform, a fork.
    if spec.accounts is not None:
        CsvAccounts(spec.accounts).require_roles(scenario.personas)
    check_processes(spec.processes, how.force)
    check_machine_holds(replay, spec.scenario, how.force)
    if spec.target is None:
        check_platform_holds(replay)
    run_dir = new_run_dir(how.reports_dir, scenario.name)
    start_manifest(
        run_dir,
        spec.scenario,
        scenario=scenario.name,
        scale=spec.scale,
        speed=spec.speed,
        seed=spec.seed,
        processes=spec.processes or 1,
        embedded=spec.target is None,
        target=spec.target or "embedded",
        sso=spec.client.settings.sso,
        **({"profile": spec.profile} if spec.target is None else {}),
    )
    write_spec(run_dir, spec)
    print(f"schoolsurge: run directory {run_dir}", flush=True)
    locust = LocustExit(None, interrupted=False)
    try:
        with _platform(spec, scenario, replay, run_dir, how.admin_token) as (target, admin_token):
            update_manifest(run_dir, target=target)
            print(f"schoolsurge: {_what_runs(replay)} against {target} ({_how_long(replay)})", flush=True)
            command = _locust_command(spec, how.locustfile, target, run_dir)
            locust = _run_locust(command, secret_environment(spec, admin_token))
    except KeyboardInterrupt:
        locust = LocustExit(None, interrupted=True)
    except PlatformStartError as error:
        finish_manifest(run_dir, RunStatus.FAILED)
        raise RunError(
            f"the embedded platform did not start ({str(error).splitlines()[0]}); see {run_dir / PLATFORM_LOG}"
        ) from None
    return conclude(run_dir, locust, junit=how.junit, fail_on_slo=how.fail_on_slo)


def _how_long(replay: Replay) -> str:
    if isinstance(replay, SweepReplay) and replay.refine_steps:
        return f"about {replay.planned_s:.0f} s, at most {replay.duration_s:.0f} s with its refinement"
    return f"about {replay.duration_s:.0f} s"


def _what_runs(replay: Replay) -> str:
    scale = f"scale {replay.scale:.3g}, speed {replay.speed:g}x"
    if isinstance(replay, SweepReplay):
        return (
            f"capacity sweep: {len(replay.rates)} steps of {replay.rates[0]:.2f} to {replay.rates[-1]:.2f} arrivals/s "
            f"(run terms; {replay.multiples[0]:.3g} to {replay.multiples[-1]:.3g} x the national peak), each settled "
            f"{replay.settle_s:.0f} s and measured {replay.measure_s:g} s, at {scale} (load fraction "
            f"{replay.load_fraction:.3g})"
            + (
                f", then up to {replay.refine_steps} refinement steps of {replay.step_s:.0f} s near the break, "
                f"until the range is within {replay.refine_within:.0%}"
                if replay.refine_steps
                else ""
            )
        )
    return f"replaying {replay.scenario.window.start}-{replay.scenario.window.end} at {scale}"


@contextlib.contextmanager
def _platform(
    spec: RunSpec, scenario: Scenario, replay: Replay, run_dir: Path, admin_token: str | None
) -> Iterator[tuple[str, str | None]]:
    """The target URL and its admin token: the user's (checked) or an embedded platform sized for this replay."""
    if spec.target is not None:  # already checked by build_spec, before the run directory was made
        yield spec.target.rstrip("/"), admin_token
        return
    print(
        f"schoolsurge: starting the reference platform ({replay.platform_pupils} pupils, "
        f"hash cost {scenario.platform.hash_cost}; a first start seeds its database, "
        f"progress in {run_dir / PLATFORM_LOG})",
        flush=True,
    )
    with PlatformProcess(
        seed=spec.seed,
        size=replay.platform_pupils,
        hash_cost=scenario.platform.hash_cost,
        profile=spec.profile,
        log_path=run_dir / PLATFORM_LOG,
        # The platform's capacity is national: it scales it to the run it stands in for.
        run_scale=replay.scale,
        run_speed=replay.speed,
        sso=spec.client.settings.sso,  # the single sign-on the run's client speaks
    ) as platform:
        yield platform.base_url, platform.admin_token


def _locust_command(spec: RunSpec, locustfile: Path | None, target: str, run_dir: Path) -> list[str]:
    """Locust's own options, and the spec: the run's options are read there, not from this command line."""
    command = [sys.executable, "-m", "locust", "-f", str(locustfile or LOCUSTFILE), "--headless", "--only-summary"]
    command += ["--host", target, "--csv", str(run_dir / LOCUST_PREFIX), "--csv-full-history"]
    command += ["--logfile", str(run_dir / LOCUST_LOG), "--exit-code-on-error", "0"]
    command += ["--run-spec", str(run_dir / RUN_SPEC)]
    if spec.processes:
        # A free master port, so that two runs with --processes on one machine do not collide on Locust's 5557;
        # on loopback only, as its workers are local: Locust's master has no authentication (docs/fleet.md).
        port = str(free_loopback_port())
        command += ["--processes", str(spec.processes), "--master-bind-host", MASTER_BIND_HOST]
        command += ["--master-bind-port", port, "--master-port", port]
    return command


def _run_locust(command: list[str], secrets: dict[str, str]) -> LocustExit:
    """Run Locust in its own session so that Ctrl-C reaches it once, through us. The secrets (admin token, OIDC
    client secret) go through its environment (LOCUST_<OPTION>, options.py), never its command line."""
    env = {**os.environ, **secrets} if secrets else None
    with _locust_session(command, env) as process:
        try:
            return LocustExit(process.wait(), interrupted=False)
        except KeyboardInterrupt:
            print("\nschoolsurge: interrupted; stopping Locust and keeping what was measured", flush=True)
            with _signals_ignored():  # a second Ctrl-C or SIGTERM must not cut the orderly stop short
                process.send_signal(signal.SIGINT)
                try:
                    return LocustExit(process.wait(timeout=LOCUST_GRACE_S), interrupted=True)
                except subprocess.TimeoutExpired:
                    process.kill()
                    return LocustExit(process.wait(), interrupted=True)


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
    does: load stopped, what was measured kept and reported, children gone. A signal the run was started with
    ignored stays ignored, as Python leaves Ctrl-C: `nohup schoolsurge run ...` goes on when its terminal closes."""
    heeded = [sig for sig in STOP_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN]
    with _signal_handlers(dict.fromkeys(heeded, _interrupt)):
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
