"""`schoolsurge target | run | report | plan`: the suite's command line.

Exit status: 0 done, 1 the run could not proceed, 2 bad input (one line says which), 3 an SLO breached
(with --fail-on-slo), 130 interrupted (Ctrl-C, SIGTERM, SIGHUP; what was measured is kept and reported).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from schoolsurge.clients.options import add_client_arguments, forwarded_client_arguments
from schoolsurge.errors import RunError, UsageError
from schoolsurge.parameters import process_count, scale_fraction, seed_number, speed_factor

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SLO_BREACHED = 3
EXIT_INTERRUPTED = 130
DEFAULT_CHART_DIR = Path("reports")


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line naming the option and what it expects, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"schoolsurge: {message}; see {self.prog} --help\n")


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="replay a scenario with Locust and build its report")
    run.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/first-day-2021.yaml")
    run.add_argument("--target", help="base URL of the platform (default: start the embedded reference one)")
    run.add_argument("--scale", type=scale_fraction, help="fraction of people simulated (default: the scenario's)")
    run.add_argument("--speed", type=speed_factor, help="time compression (default: the scenario's)")
    run.add_argument("--seed", type=seed_number, help="seed of accounts and randomness (default: the scenario's)")
    run.add_argument("--processes", type=process_count, help="Locust worker processes (default: one process)")
    run.add_argument("--accounts", type=Path, help="CSV of test accounts role,username,password (another platform)")
    run.add_argument("--locustfile", type=Path, help="a locustfile of your own (default: the surge locustfile)")
    run.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run directories go")
    run.add_argument("--allow-host", help="a non-loopback host you own and explicitly allow to be loaded")
    run.add_argument("--fail-on-slo", action="store_true", help=f"exit {EXIT_SLO_BREACHED} if an SLO breaks")
    run.add_argument("--force", action="store_true", help="run even when the plan says this machine cannot hold it")
    add_client_arguments(run)


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="(re)build report.html of a run directory")
    report.add_argument("run_dir", type=Path, help="a folder under reports/")


def _add_plan(subparsers: argparse._SubParsersAction) -> None:
    plan = subparsers.add_parser("plan", help="a scenario's national and scaled figures and fleet sizing; runs nothing")
    plan.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/first-day-2021.yaml")
    plan.add_argument("--scale", type=scale_fraction, help="fraction of people simulated (default: the scenario's)")
    plan.add_argument("--speed", type=speed_factor, help="time compression (default: the scenario's)")
    plan.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    plan.add_argument("--chart", type=Path, help="PNG of the national curves (default: reports/plan-<scenario>.png)")
    plan.add_argument("--rps-per-process", type=float, help="requests/s one Locust process offers (default: 5300)")
    plan.add_argument("--kb-per-session", type=float, help="memory per open session, KB (default: 27)")
    plan.add_argument("--cpu-target", type=float, help="share of a core each process may use (default: 0.75)")


def _add_target(subparsers: argparse._SubParsersAction) -> None:
    from schoolsurge.platform.server import add_target_arguments

    target = subparsers.add_parser("target", help="serve the embedded reference school platform")
    add_target_arguments(target)


def _run(args: argparse.Namespace) -> int:
    from schoolsurge.runner import RunRequest, run

    outcome = run(
        RunRequest(
            scenario_path=args.scenario,
            target=args.target,
            scale=args.scale,
            speed=args.speed,
            seed=args.seed,
            processes=args.processes,
            reports_dir=args.reports_dir,
            allow_host=args.allow_host,
            fail_on_slo=args.fail_on_slo,
            force=args.force,
            accounts=args.accounts,
            locustfile=args.locustfile,
            client_arguments=forwarded_client_arguments(args),
        )
    )
    for verdict in outcome.verdicts:
        print(f"SLO {verdict.line()}")
    if outcome.served is not None:
        print(f"Who got in: {outcome.served.line()}")
    if outcome.report is not None:
        print(f"Report: {outcome.report}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if args.fail_on_slo and not outcome.slo_met:
        return EXIT_SLO_BREACHED
    return 0


def _plan(args: argparse.Namespace) -> int:
    """Load, plan, write the chart, print text or JSON."""
    from schoolsurge.models.fleet import FleetFigures
    from schoolsurge.models.plan import make_plan
    from schoolsurge.models.replay import Replay
    from schoolsurge.parameters import resolve_parameters
    from schoolsurge.report.plan import format_plan, write_chart
    from schoolsurge.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    parameters = resolve_parameters(scenario, args.scale, args.speed)
    replay = Replay(scenario, parameters.scale, parameters.speed)
    given = {"requests_per_s_per_process": args.rps_per_process, "kb_per_session": args.kb_per_session}
    given["cpu_target"] = args.cpu_target
    try:
        figures = FleetFigures(**{name: value for name, value in given.items() if value is not None})
    except ValueError as error:
        raise UsageError(f"{error}; change the fleet option") from None
    plan = make_plan(replay, figures)
    chart = args.chart or DEFAULT_CHART_DIR / f"plan-{scenario.name}.png"
    try:
        plan["chart"] = str(write_chart(scenario, replay.national, Path(chart)))
    except OSError as error:
        raise UsageError(
            f"cannot write the chart {chart} ({error.strerror}); pass --chart with a writable path"
        ) from None
    if args.json:
        print(json.dumps(plan, indent=2))
    else:
        print(format_plan(plan))
        print(f"\nChart: {plan['chart']}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from schoolsurge.report import build_report

    print(f"Report: {build_report(args.run_dir)}")
    return 0


def _target(args: argparse.Namespace) -> int:
    from schoolsurge.platform.server import run_target

    return run_target(args)


COMMANDS = {"run": _run, "report": _report, "plan": _plan, "target": _target}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="schoolsurge", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_target(subparsers)
    _add_run(subparsers)
    _add_report(subparsers)
    _add_plan(subparsers)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed as one line
        return int(exit_.code or 0)
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"schoolsurge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as error:
        print(f"schoolsurge: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("schoolsurge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
