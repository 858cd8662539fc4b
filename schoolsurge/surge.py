"""The surge locustfile: `locust -f locustfiles/surge.py --scenario scenarios/first-day-2021.yaml -H URL`.

Registers the scenario options, builds the run context and the open-arrival engine in every Locust process
(local, master, workers), refuses non-loopback targets, and sizes the agent pool with PoolShape.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from schoolsurge.accounts_source import AccountsError
from schoolsurge.context import SurgeContext, build_context
from schoolsurge.engine.agent import SurgeAgent
from schoolsurge.engine.bots import BOT_STEP_PREFIX, run_bot_floods
from schoolsurge.engine.incidents import drive_capacity_incidents
from schoolsurge.engine.locust_hooks import EngineHooks
from schoolsurge.engine.runtime import Engine
from schoolsurge.engine.shape import PoolShape
from schoolsurge.params import positive_seconds, scale_fraction, seed_number, speed_factor
from schoolsurge.rundir import TIMELINE, new_run_dir, write_json
from schoolsurge.safety import UnsafeTargetError, check_target
from schoolsurge.scenario import ScenarioError, seconds_to_clock
from schoolsurge.steps import LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE

__all__ = ["PoolShape", "SurgeAgent"]

PROGRESS_EVERY_S = 10
log = logging.getLogger("schoolsurge")


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument("--scenario", default="scenarios/first-day-2021.yaml", help="scenario YAML file")
    parser.add_argument("--scale", type=scale_fraction, default=None, help="fraction of people simulated")
    parser.add_argument("--speed", type=speed_factor, default=None, help="time compression (scenario s per run s)")
    parser.add_argument("--seed", type=seed_number, default=None, help="seed of the schedule, accounts and choices")
    parser.add_argument("--accounts", default=None, help="CSV file role,username,password (default: from the seed)")
    parser.add_argument("--run-dir", default=None, include_in_web_ui=False, help="where sessions.csv goes")
    parser.add_argument("--allow-host", default=None, help="a non-loopback host you own and may load")
    parser.add_argument("--admin-token", default=None, is_secret=True, help="platform admin token (incidents)")
    parser.add_argument("--late-after", type=positive_seconds, default=1.0, help="start delay (s) counted as late")
    parser.add_argument(
        "--drop-after", type=positive_seconds, default=60.0, help="start delay (s) past which it is dropped"
    )


def _fail(message: str) -> None:
    print(f"schoolsurge: {message}", file=sys.stderr)
    sys.exit(2)


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return  # a library user builds environment.surge and the hooks itself
    try:
        surge = build_context(options)
        if environment.host:
            check_target(environment.host, options.allow_host)
    except (ScenarioError, UnsafeTargetError, AccountsError, ValueError) as error:
        _fail(str(error))
    runner = environment.runner
    if surge.run_dir is None and not isinstance(runner, WorkerRunner):
        # Plain `locust -f` gets a run directory of its own, named like schoolsurge run's.
        surge.run_dir = new_run_dir(Path("reports"), f"{surge.scenario.name}-locust")
    if surge.run_dir is not None and not isinstance(runner, WorkerRunner):
        surge.run_dir.mkdir(parents=True, exist_ok=True)
    install(environment, surge, options.admin_token)


def install(environment: Environment, surge: SurgeContext, admin_token: str | None = None) -> EngineHooks:
    """Attach the engine to an environment whose runner exists (used by on_init and by library users)."""
    environment.surge = surge
    runner = environment.runner

    def new_engine() -> Engine:
        return Engine(surge.replay, surge.seed, surge.late_after_s, surge.drop_after_s)

    def clock_label(second: int) -> str:
        clock = surge.replay.clock_at(second)
        return f"{seconds_to_clock(clock)}:{int(clock) % 60:02d}"

    def on_start(start_unix: float) -> None:
        """On the master (or single process): the run's timeline file and its capacity incidents."""
        if surge.run_dir is not None:
            timeline = {
                "test_start_unix": start_unix,
                "window_start": surge.scenario.window.start,
                "window_end": surge.scenario.window.end,
                "scale": surge.replay.scale,
                "speed": surge.replay.speed,
                "people_scheduled": surge.replay.people,
            }
            write_json(surge.run_dir / TIMELINE, timeline)
        hooks.spawn(drive_capacity_incidents, surge, environment.host, admin_token, lambda: start_unix)

    hooks = EngineHooks(environment, new_engine, surge.run_dir, clock_label, on_start)
    environment.surge_hooks = hooks
    if not isinstance(runner, MasterRunner):

        def bot_client(session: Any) -> Any:
            return SurgeAgent.client_class(session, step_prefix=BOT_STEP_PREFIX)

        hooks.spawn(run_bot_floods, environment, surge, lambda: hooks.engine, bot_client)
    if not isinstance(runner, WorkerRunner):
        hooks.spawn(_report_progress, environment)
    return hooks


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    """Headless and web UI alike: a target changed in the web form is checked again before any load."""
    if isinstance(environment.runner, WorkerRunner) or not hasattr(environment, "surge"):
        return
    try:
        check_target(environment.host or "", environment.parsed_options.allow_host)
    except UnsafeTargetError as error:
        log.error("%s", error)
        environment.runner.quit()


def _report_progress(environment: Environment) -> None:
    """One line every few seconds: where on the morning's clock we are and how people fare."""
    while True:
        gevent.sleep(PROGRESS_EVERY_S)
        runner = environment.runner
        hooks = environment.surge_hooks
        started = hooks.engine.queue.start_unix
        if started is None or runner is None or runner.state not in ("running", "spawning"):
            continue
        ledger = hooks.ledger()
        status = hooks.fleet_status()
        clock = seconds_to_clock(environment.surge.replay.clock_at(time.time() - started))
        stats = environment.stats
        login = stats.get(LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE)
        p95 = login.get_current_response_time_percentile(0.95) if login.num_requests else None
        requests = stats.total.num_requests - login.num_requests
        failures = stats.total.num_failures - login.num_failures
        fail_pct = 100 * failures / requests if requests else 0.0
        print(
            f"[{clock}] pool {runner.user_count:4d} | in session {status.active:4d} | "
            f"arrived {ledger.total('started')}/{ledger.total('scheduled')} (late {ledger.total('late')}, "
            f"dropped {ledger.total('dropped')}) | logins {ledger.total('logins_succeeded')} ok, "
            f"{ledger.total('abandoned')} gave up | {stats.total.current_rps - login.current_rps:6.1f} req/s, "
            f"{fail_pct:4.1f}% failed | login p95 {p95 if p95 is not None else '-'} ms",
            flush=True,
        )
