"""`schoolsurge run`: platform up, Locust headless over the scenario, results and report kept, platform down."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import schoolsurge
from schoolsurge.models.replay import Replay
from schoolsurge.platform.process import PlatformError as PlatformStartError
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.report import ReportError, load_run, write_report
from schoolsurge.rundir import LOCUST_PREFIX, new_run_dir, start_manifest, update_manifest
from schoolsurge.safety import check_target
from schoolsurge.scenario import Scenario, load_scenario
from schoolsurge.slo import Verdict, judge

LOCUSTFILE = Path(schoolsurge.__file__).with_name("surge.py")
LOCUST_GRACE_S = 30  # after the shape ends or Ctrl-C, how long Locust gets to write its CSV files


class RunError(RuntimeError):
    """The run could not proceed; the message is one line saying what to do."""


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
        process.send_signal(signal.SIGINT)
        try:
            return process.wait(timeout=LOCUST_GRACE_S), True
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait(), True


def run(request: RunRequest) -> RunOutcome:
    scenario = load_scenario(request.scenario_path)
    seed = request.seed if request.seed is not None else scenario.run.seed
    replay = Replay(
        scenario,
        request.scale if request.scale is not None else scenario.run.scale,
        request.speed if request.speed is not None else scenario.run.speed,
    )
    if request.target is not None:
        check_target(request.target, request.allow_host)  # refuse before creating anything
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
