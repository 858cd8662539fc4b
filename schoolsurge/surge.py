"""The surge locustfile: `locust -f locustfiles/surge.py --scenario scenarios/first-day-2021.yaml`.

Registers the scenario options, builds the run context in every Locust process, refuses non-loopback
targets, weights the personas by the scenario and follows its curve with ScenarioShape.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from schoolsurge.context import build_context
from schoolsurge.models.population import person_seconds_by_persona
from schoolsurge.personas import ParentUser, StudentUser, TeacherUser
from schoolsurge.safety import UnsafeTargetError, check_target
from schoolsurge.scenario import ScenarioError, seconds_to_clock
from schoolsurge.shape import ScenarioShape
from schoolsurge.steps import LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE

__all__ = ["ParentUser", "ScenarioShape", "StudentUser", "TeacherUser"]

PERSONA_CLASSES = {"student": StudentUser, "teacher": TeacherUser, "parent": ParentUser}
PROGRESS_EVERY_S = 10
log = logging.getLogger("schoolsurge")


@events.init_command_line_parser.add_listener
def add_options(parser: Any) -> None:
    parser.add_argument("--scenario", default="scenarios/first-day-2021.yaml", help="scenario YAML file")
    parser.add_argument("--scale", type=float, default=None, help="fraction of people simulated")
    parser.add_argument("--speed", type=float, default=None, help="time compression (scenario s per run s)")
    parser.add_argument("--seed", type=int, default=None, help="seed of accounts and randomness")
    parser.add_argument("--run-dir", default=None, include_in_web_ui=False, help="where to write run files")
    parser.add_argument("--allow-host", default=None, help="a non-loopback host you own and may load")


def _fail(message: str) -> None:
    print(f"schoolsurge: {message}", file=sys.stderr)
    sys.exit(2)


@events.init.add_listener
def on_init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return  # a library user builds environment.surge itself
    worker_index = getattr(environment.runner, "worker_index", 0) or 0
    try:
        environment.surge = build_context(options, worker_index)
        if environment.host:
            check_target(environment.host, options.allow_host)
    except (ScenarioError, UnsafeTargetError, ValueError) as error:
        _fail(str(error))
    weights = person_seconds_by_persona(environment.surge.replay.scenario)
    total = sum(weights.values())
    for persona, user_class in PERSONA_CLASSES.items():
        # Locust needs integer weights; the share of logged-in time each persona accounts for.
        user_class.weight = max(1, round(1000 * weights.get(persona, 0.0) / total))
    if not isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_report_progress, environment)


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    try:
        check_target(environment.host or "", environment.parsed_options.allow_host)
    except UnsafeTargetError as error:
        log.error("%s", error)
        environment.runner.quit()
        return
    surge = environment.surge
    surge.test_start_unix = time.time()
    if surge.run_dir is not None:
        timeline = {
            "test_start_unix": surge.test_start_unix,
            "window_start": surge.replay.scenario.window.start,
            "window_end": surge.replay.scenario.window.end,
            "scale": surge.replay.scale,
            "speed": surge.replay.speed,
        }
        (surge.run_dir / "timeline.json").write_text(json.dumps(timeline, indent=2))


def _report_progress(environment: Environment) -> None:
    """One line every few seconds: where on the morning's clock we are and how the platform copes."""
    while True:
        gevent.sleep(PROGRESS_EVERY_S)
        runner = environment.runner
        started = getattr(environment.surge, "test_start_unix", None)
        if started is None or runner is None or runner.state not in ("running", "spawning"):
            continue
        replay = environment.surge.replay
        clock = seconds_to_clock(replay.clock_at(time.time() - started))
        stats = environment.stats
        total = stats.total
        login = stats.get(LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE)
        p95 = login.get_current_response_time_percentile(0.95) if login.num_requests else None
        # The login FLOW entry summarises requests already counted; leave it out of the request figures.
        requests = total.num_requests - login.num_requests
        failures = total.num_failures - login.num_failures
        fail_pct = 100 * failures / requests if requests else 0.0
        workers = f" | workers {len(runner.clients)}" if isinstance(runner, MasterRunner) else ""
        print(
            f"[{clock}] users {runner.user_count:5d} | {total.current_rps - login.current_rps:7.1f} req/s | "
            f"failures {fail_pct:5.1f}% | logins {login.num_requests - login.num_failures} ok, "
            f"{login.num_failures} failed | login p95 {p95 if p95 is not None else '-'} ms{workers}",
            flush=True,
        )
