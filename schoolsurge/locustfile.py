"""The surge locustfile: `locust -f locustfiles/surge.py --scenario scenarios/first-day-2021.yaml -H URL`.

The only module that registers Locust listeners and options. Its options are the option table's (options.py):
the run's, or `--run-spec FILE` when `schoolsurge run` started this Locust (it wrote the run's options there).
In every Locust process (single, master, workers) it reads the run spec, checks the target, builds the run
context and installs the engine; Locust finds the agent class and the load shape here. A plain `locust -f` run
leaves a complete run directory, as `schoolsurge run` does (reports/<UTC timestamp>-<scenario>-locust/ unless
--run-dir says where): its run spec, the engine's files and, once the engine has written them, the run's
conclusion (conclude.py: validity, report, index, verdicts).
"""

from __future__ import annotations

import gc
import logging
import sys
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from schoolsurge.engine import EngineNotInstalledError, PoolShape, SurgeAgent, build_context, engine_of, install
from schoolsurge.engine.locust_workarounds import (
    cache_locust_default_arguments,
    check_pooled_connections_without_yielding,
    resolve_address_literals_in_place,
)
from schoolsurge.errors import UnsafeTargetError, UsageError
from schoolsurge.exit_status import EXIT_CLIENT_BROKEN, EXIT_USAGE
from schoolsurge.options import DEFAULT_REPORTS_DIR, Command, add_options
from schoolsurge.rundir import new_run_dir, update_manifest
from schoolsurge.safety import check_target
from schoolsurge.spec import write_spec

__all__ = ["PoolShape", "SurgeAgent"]

log = logging.getLogger(__name__)
# The cyclic collector's generation thresholds during a run (Python's default: 700, 10, 10). Every person in a
# session holds objects (an HTTP session, its cookie jar, a generator) that survive young collections: at the
# default, each young collection walks survivors again and the full ones walk every session (3% of a worker's CPU
# at 1,400 requests/s, 16% on a busy machine, with more people in session). Requests' objects die by reference
# counting, so collections can be rare: the few cycles wait in memory a little longer.
COLLECTOR_THRESHOLDS = (50_000, 20, 100)
cache_locust_default_arguments()  # before any worker handles a spawn message
resolve_address_literals_in_place()  # before any person connects
check_pooled_connections_without_yielding()


@events.init_command_line_parser.add_listener
def on_command_line_parser(parser: Any) -> None:
    add_options(parser, Command.LOCUST)


def _fail(message: str) -> None:
    print(f"schoolsurge: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return  # a library user builds the context and calls install() itself
    try:
        context = build_context(options)
        if environment.host:
            check_target(environment.host, context.allow_host)
    except UsageError as error:
        _fail(str(error))
    if context.run_dir is None and not isinstance(environment.runner, WorkerRunner):
        context.run_dir = new_run_dir(DEFAULT_REPORTS_DIR, f"{context.scenario.name}-locust")
    if getattr(options, "logfile", None):
        _statistics_to_logfile(options.logfile)
    engine = install(environment, context)
    if engine.results is not None and engine.results.owned:  # this process starts the run: its spec is written here
        write_spec(engine.results.run_dir, context.spec)
    # Everything loaded so far (modules, the scenario, the schedule) lives as long as the process: kept out of
    # the collector's reach, a full collection costs what the run allocates, not what it loaded.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _statistics_to_logfile(logfile: str) -> None:
    """Locust's statistics tables (its `locust.stats_logger`, about 40 lines at the end) go to the log file, not
    the console: the console ends with the run's answer (conclude.py), locust.log keeps the tables."""
    stats_logger = logging.getLogger("locust.stats_logger")
    for handler in list(stats_logger.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            stats_logger.removeHandler(handler)
    handler = logging.FileHandler(logfile)
    handler.setFormatter(logging.Formatter("%(message)s"))
    stats_logger.addHandler(handler)


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


@events.quitting.add_listener
def on_quitting(environment: Environment, **_: Any) -> None:
    """Conclude a run whose directory is this process's own (`schoolsurge run` concludes its runs itself, once
    Locust has exited). Registered at import, before the engine's own listener (install(), at init): Locust fires
    `quitting` in reverse order, so this runs once the engine has written its files."""
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner) or environment.parsed_options is None:
        return  # a worker writes no run directory
    try:
        results = engine_of(environment).results
    except EngineNotInstalledError:
        return  # its init refused the run
    if results is None or not results.owned:
        return
    from schoolsurge.conclude import conclude  # the report's libraries: only the process that concludes needs them

    outcome = conclude(results.run_dir)
    if outcome.refused is not None:  # as `schoolsurge run` exits; else Locust's own status stands
        environment.process_exit_code = EXIT_USAGE
    elif outcome.client_broken:
        environment.process_exit_code = EXIT_CLIENT_BROKEN
    run_dir = results.run_dir

    def record_exit_code(exit_code: int, **_: Any) -> None:
        """Locust's exit status, known only once `quitting` has fired: the manifest's `locust_exit_code`."""
        try:
            update_manifest(run_dir, locust_exit_code=exit_code)
        except OSError as error:
            log.error("cannot record Locust's exit status in %s: %s", run_dir, error)

    environment.events.quit.add_listener(record_exit_code)
