"""The surge locustfile: `locust -f locustfiles/surge.py --scenario scenarios/first-day-2021.yaml -H URL`.

The only module that registers Locust listeners and options. In every Locust process (single, master,
workers) it checks the options and the target, builds the run context and installs the engine; Locust finds
the agent class and the load shape here. A plain `locust -f` run leaves a complete run directory, as
`schoolsurge run` does (reports/<UTC timestamp>-<scenario>-locust/ unless --run-dir says where).
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from schoolsurge.clients.options import add_client_arguments
from schoolsurge.engine import PoolShape, SurgeAgent, build_context, engine_of, install
from schoolsurge.engine.locust_workarounds import cache_locust_default_arguments
from schoolsurge.errors import UnsafeTargetError, UsageError
from schoolsurge.monitoring_options import add_monitoring_arguments
from schoolsurge.parameters import scale_fraction, seconds_at_least_zero, seed_number, speed_factor
from schoolsurge.rundir import new_run_dir
from schoolsurge.safety import check_target
from schoolsurge.sweep_options import add_sweep_arguments

__all__ = ["PoolShape", "SurgeAgent"]

DEFAULT_SCENARIO = "scenarios/first-day-2021.yaml"
DEFAULT_REPORTS_DIR = Path("reports")
log = logging.getLogger(__name__)
cache_locust_default_arguments()  # before any worker handles a spawn message


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario YAML file")
    parser.add_argument("--scale", type=scale_fraction, default=None, help="fraction of people simulated")
    parser.add_argument("--speed", type=speed_factor, default=None, help="time compression (scenario s per run s)")
    parser.add_argument("--seed", type=seed_number, default=None, help="seed of the schedule, accounts and choices")
    parser.add_argument("--accounts", default=None, help="CSV file role,username,password (default: from the seed)")
    parser.add_argument("--run-dir", default=None, include_in_web_ui=False, help="where the run's files go")
    parser.add_argument("--allow-host", default=None, help="a non-loopback host you own and may load")
    parser.add_argument("--admin-token", default=None, is_secret=True, help="platform admin token (incidents)")
    parser.add_argument(
        "--late-after", type=seconds_at_least_zero, default=None, help="start delay (s) counted as late (1)"
    )
    parser.add_argument(
        "--drop-after", type=seconds_at_least_zero, default=None, help="start delay (s) past which it is dropped (60)"
    )

    def add_hidden_argument(flag: str, **kwargs: Any) -> None:
        parser.add_argument(flag, include_in_web_ui=False, **kwargs)

    add_client_arguments(parser, add_hidden_argument)
    add_sweep_arguments(add_hidden_argument)
    add_monitoring_arguments(add_hidden_argument)


def _fail(message: str) -> None:
    print(f"schoolsurge: {message}", file=sys.stderr)
    sys.exit(2)


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return  # a library user builds the context and calls install() itself
    try:
        context = build_context(options)
        if environment.host:
            check_target(environment.host, options.allow_host)
    except UsageError as error:
        _fail(str(error))
    if context.run_dir is None and not isinstance(environment.runner, WorkerRunner):
        context.run_dir = new_run_dir(DEFAULT_REPORTS_DIR, f"{context.scenario.name}-locust")
    install(environment, context)
    # Everything loaded so far (modules, the scenario, the schedule) lives as long as the process: kept out of
    # the collector's reach, a full collection costs what the run allocates, not what it loaded.
    gc.collect()
    gc.freeze()


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    """Headless and web UI alike: a target changed in the web form is checked again before any load."""
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner) or environment.parsed_options is None:
        return  # a worker (its runner may still be connecting when its first spawn arrives)
    try:
        check_target(environment.host or "", engine_of(environment).context.allow_host)
    except UnsafeTargetError as error:
        log.error("%s", error)
        environment.runner.quit()
