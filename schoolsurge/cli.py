"""`schoolsurge target | run | report | plan`: the suite's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from schoolsurge.params import process_count, scale_fraction, seed_number, speed_factor
from schoolsurge.report import ReportError, build_report
from schoolsurge.safety import UnsafeTargetError
from schoolsurge.scenario import ScenarioError

EXIT_USAGE = 2
EXIT_SLO_BREACHED = 3
EXIT_INTERRUPTED = 130


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
    run.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run directories go")
    run.add_argument("--allow-host", help="a non-loopback host you own and explicitly allow to be loaded")
    run.add_argument("--fail-on-slo", action="store_true", help=f"exit {EXIT_SLO_BREACHED} if an SLO breaks")
    run.add_argument(
        "--force", action="store_true", help="run even when the plan says this machine cannot hold the run"
    )


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
    from schoolsurge.runner import RunError, RunRequest, RunTooLargeError, run

    try:
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
            )
        )
    except RunTooLargeError as error:
        print(f"schoolsurge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as error:
        print(f"schoolsurge: {error}", file=sys.stderr)
        return 1
    for verdict in outcome.verdicts:
        state = "met" if verdict.met else "BREACHED"
        print(f"SLO {verdict.objective}: {verdict.measured} (objective {verdict.threshold}) -> {state}")
    if outcome.report is not None:
        print(f"Report: {outcome.report}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if args.fail_on_slo and not outcome.slo_met:
        return EXIT_SLO_BREACHED
    return 0


def _plan(args: argparse.Namespace) -> int:
    from schoolsurge.plan import PlanError, run_plan

    try:
        return run_plan(args)
    except PlanError as error:
        print(f"schoolsurge: {error}", file=sys.stderr)
        return EXIT_USAGE


def _report(args: argparse.Namespace) -> int:
    path = build_report(args.run_dir)
    print(f"Report: {path}")
    return 0


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
        if args.command == "run":
            return _run(args)
        if args.command == "report":
            return _report(args)
        if args.command == "plan":
            return _plan(args)
        from schoolsurge.platform.server import run_target

        return run_target(args)
    except (ScenarioError, UnsafeTargetError, ReportError) as error:
        print(f"schoolsurge: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("schoolsurge: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
