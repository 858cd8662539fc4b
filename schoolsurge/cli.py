"""`schoolsurge target | run | capacity | capacity fit | report | compare | plan`: the suite's command line.

Exit status (docs: README.md, "Exit status"):
  0    done (a run: its SLOs met, or not judged without --fail-on-slo)
  1    the run could not proceed (the platform did not start, Locust failed)
  2    bad input, refused before anything started (one line says which), or a run the loopback guard stopped
       (a client asked for a URL it refuses: nothing was sent there; one line says which; what was measured kept)
  3    an SLO breached (run --fail-on-slo), or a figure regressed (compare --fail-on-regression)
  4    invalid run: the load generator (generator-bound) or the machine the platform ran on (machine-bound), not
       the platform, was the bottleneck
  5    invalid run: the client is broken (a step raised in the client in more than 10% of the journeys)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP; what was measured is kept and reported)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from schoolsurge.errors import RunError, UsageError
from schoolsurge.exit_status import (
    EXIT_CLIENT_BROKEN,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_INVALID_RUN,
    EXIT_SLO_BREACHED,
    EXIT_USAGE,
)
from schoolsurge.options import DEFAULT_REPORTS_DIR, Command, add_options
from schoolsurge.parameters import positive_number

# Where the exit statuses are importable from, as they always were (their home is exit_status.py).
__all__ = [
    "EXIT_CLIENT_BROKEN",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID_RUN",
    "EXIT_SLO_BREACHED",
    "EXIT_USAGE",
    "main",
]


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line naming the option and what it expects, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"schoolsurge: {message}; see {self.prog} --help\n")


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="replay a scenario with Locust and build its report")
    add_options(run, Command.RUN)


def _add_capacity(subparsers: argparse._SubParsersAction) -> None:
    capacity = subparsers.add_parser(
        "capacity",
        help="capacity sweep: the scenario's people at a constant rate per step, up past saturation "
        "(`schoolsurge capacity fit FILE.csv` fits a table)",
        description="Steps the scenario's arrival rate up until the platform breaks, measures each step once "
        "settled, fits the Universal Scalability Law and says what capacity the national morning needs. "
        "`schoolsurge capacity fit FILE.csv [--n COLUMN --x COLUMN] [--json]` fits any concurrency/throughput table.",
    )
    add_options(capacity, Command.CAPACITY)


def _add_capacity_fit(subparsers: argparse._SubParsersAction) -> None:
    fit = subparsers.add_parser("capacity-fit", prog="schoolsurge capacity fit", help=argparse.SUPPRESS)
    fit.add_argument("table", type=Path, help="CSV of concurrency and throughput (a sweep's capacity.csv, or yours)")
    fit.add_argument("--n", dest="n_column", help="column of concurrency N (default: concurrency)")
    fit.add_argument("--x", dest="x_column", help="column of throughput X (default: successful_requests_per_s)")
    fit.add_argument("--json", action="store_true", help="print the model as one JSON object")


def _add_report(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="(re)build report.html of a run directory")
    report.add_argument("run_dir", type=Path, help="a folder under reports/")


def _add_compare(subparsers: argparse._SubParsersAction) -> None:
    compare = subparsers.add_parser(
        "compare", help="compare runs: charts overlaid, headline figures against a baseline"
    )
    compare.add_argument("runs", type=Path, nargs="+", help="two or more run directories")
    compare.add_argument("--baseline", type=Path, help="the run the others are compared with (default: the first)")
    compare.add_argument("--out", type=Path, help="where compare.html goes (default: reports/compare-<UTC time>/)")
    compare.add_argument(
        "--fail-on-regression",
        type=positive_number,
        metavar="PCT",
        help=f"exit {EXIT_SLO_BREACHED} when a headline figure is worse than the baseline's by more than PCT %%",
    )


def _add_plan(subparsers: argparse._SubParsersAction) -> None:
    plan = subparsers.add_parser("plan", help="a scenario's national and scaled figures and fleet sizing; runs nothing")
    add_options(plan, Command.PLAN)
    plan.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    plan.add_argument("--chart", type=Path, help="PNG of the national curves (default: reports/plan-<scenario>.png)")
    plan.add_argument(
        "--rps-per-process",
        type=float,
        help="requests/s one Locust worker process offers on a whole core (default: benchmarks/fleet_constants.json)",
    )
    plan.add_argument(
        "--kb-per-session", type=float, help="memory per open session, KB (default: benchmarks/fleet_constants.json)"
    )
    plan.add_argument("--cpu-target", type=float, help="share of a core each process may use (default: 0.75)")


def _add_target(subparsers: argparse._SubParsersAction) -> None:
    from schoolsurge.platform.server import add_target_arguments

    target = subparsers.add_parser("target", help="serve the embedded reference school platform")
    add_target_arguments(target)


def _run(args: argparse.Namespace) -> int:
    return _start(args, Command.RUN)


def _capacity(args: argparse.Namespace) -> int:
    return _start(args, Command.CAPACITY)


def _start(args: argparse.Namespace, command: Command) -> int:
    """Build the run spec from the options, run it, conclude it (conclude.py prints the run's last lines)."""
    from schoolsurge.runner import Start, start
    from schoolsurge.spec import build_spec

    return start(build_spec(args, command), Start.from_options(args)).exit_status


def _capacity_fit(args: argparse.Namespace) -> int:
    from schoolsurge.capacity_table import fit_json, fit_table, format_fit

    fit = fit_table(args.table, args.n_column, args.x_column)
    print(json.dumps(fit_json(fit), indent=2) if args.json else format_fit(fit))
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
    chart = args.chart or DEFAULT_REPORTS_DIR / f"plan-{scenario.name}.png"
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
    from schoolsurge.report.refresh import refresh_index

    report = build_report(args.run_dir)
    print(f"Report: {report}")
    refresh_index(Path(args.run_dir).resolve().parent)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from schoolsurge.report.compare import compare_runs, regressions, write_comparison
    from schoolsurge.report.refresh import refresh_index
    from schoolsurge.rundir import new_run_dir

    comparison = compare_runs(args.runs, args.baseline)
    out = args.out or new_run_dir(Path(args.runs[0]).resolve().parent, "compare")
    print(f"Comparison: {write_comparison(comparison, Path(out))}")
    refresh_index(Path(out).resolve().parent)
    if args.fail_on_regression is None:
        return 0
    worse = regressions(comparison, args.fail_on_regression)
    for line in worse:
        print(f"REGRESSION {line}")
    return EXIT_SLO_BREACHED if worse else 0


def _target(args: argparse.Namespace) -> int:
    from schoolsurge.platform.server import run_target

    return run_target(args)


COMMANDS = {
    "run": _run,
    "capacity": _capacity,
    "capacity-fit": _capacity_fit,
    "report": _report,
    "compare": _compare,
    "plan": _plan,
    "target": _target,
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="schoolsurge", description=__doc__)
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="{target,run,capacity,capacity fit,report,compare,plan}"
    )
    _add_target(subparsers)
    _add_run(subparsers)
    _add_capacity(subparsers)
    _add_capacity_fit(subparsers)
    _add_report(subparsers)
    _add_compare(subparsers)
    _add_plan(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["capacity", "fit"]:
        argv = ["capacity-fit", *argv[2:]]
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
