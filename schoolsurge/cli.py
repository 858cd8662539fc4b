"""`schoolsurge target | run | capacity | capacity fit | report | compare | plan`: the suite's command line.

Exit status (docs: README.md, "Exit status"):
  0    done (a run: its SLOs met, or not judged without --fail-on-slo)
  1    the run could not proceed (the platform did not start, Locust failed)
  2    bad input, refused before anything started (one line says which), or a run the loopback guard stopped
       (a client asked for a URL it refuses: nothing was sent there; one line says which; what was measured kept)
  3    an SLO breached (run --fail-on-slo), or a figure regressed (compare --fail-on-regression)
  4    invalid run: the load generator, not the platform, was the bottleneck (generator-bound)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP; what was measured is kept and reported)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from schoolsurge.clients.options import add_client_arguments, forwarded_client_arguments
from schoolsurge.errors import RunError, UsageError
from schoolsurge.models.sweep import DEFAULT_MEASURE_S, DEFAULT_STEPS
from schoolsurge.monitoring_options import add_monitoring_arguments, forwarded_monitoring_arguments
from schoolsurge.parameters import process_count, scale_fraction, seconds_at_least_zero, seed_number, speed_factor
from schoolsurge.platform.settings import PROFILES as PROFILE_NAMES
from schoolsurge.rundir import CAPACITY_JSON
from schoolsurge.sweep_options import at_least_zero, positive_number, stop_margin, sweep_steps

if TYPE_CHECKING:
    from schoolsurge.runner import RunOutcome, RunRequest

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SLO_BREACHED = 3
EXIT_INVALID_RUN = 4
EXIT_INTERRUPTED = 130
DEFAULT_CHART_DIR = Path("reports")


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line naming the option and what it expects, not the whole usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"schoolsurge: {message}; see {self.prog} --help\n")


def _add_run_arguments(run: argparse.ArgumentParser, defaults: str = "the scenario's") -> None:
    """What `run` and `capacity` share: the target, the replay, the processes, the client."""
    run.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/first-day-2021.yaml")
    run.add_argument("--target", help="base URL of the platform (default: start the embedded reference one)")
    run.add_argument(
        "--profile",
        choices=sorted(PROFILE_NAMES),
        help="capacity profile of the embedded platform (default: the scenario's)",
    )
    run.add_argument("--scale", type=scale_fraction, help=f"fraction of people simulated (default: {defaults})")
    run.add_argument("--speed", type=speed_factor, help=f"time compression (default: {defaults})")
    run.add_argument("--seed", type=seed_number, help="seed of accounts and randomness (default: the scenario's)")
    run.add_argument(
        "--late-after", type=seconds_at_least_zero, help="start delay (s) counted as a late arrival (default 1)"
    )
    run.add_argument(
        "--drop-after", type=seconds_at_least_zero, help="start delay (s) past which an arrival is dropped (60)"
    )
    run.add_argument("--processes", type=process_count, help="Locust worker processes (default: one process)")
    run.add_argument("--accounts", type=Path, help="CSV of test accounts role,username,password (another platform)")
    run.add_argument("--locustfile", type=Path, help="a locustfile of your own (default: the surge locustfile)")
    run.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run directories go")
    run.add_argument("--allow-host", help="a non-loopback host you own and explicitly allow to be loaded")
    run.add_argument("--force", action="store_true", help="run even when the plan says this machine cannot hold it")
    add_client_arguments(run)
    add_monitoring_arguments(run.add_argument, locust=False)


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="replay a scenario with Locust and build its report")
    _add_run_arguments(run)
    run.add_argument("--fail-on-slo", action="store_true", help=f"exit {EXIT_SLO_BREACHED} if an SLO breaks")
    run.add_argument("--junit", type=Path, help="write the SLO verdicts and the run's validity as JUnit XML here")


def _add_capacity(subparsers: argparse._SubParsersAction) -> None:
    capacity = subparsers.add_parser(
        "capacity",
        help="capacity sweep: the scenario's people at a constant rate per step, up past saturation "
        "(`schoolsurge capacity fit FILE.csv` fits a table)",
        description="Steps the scenario's arrival rate up until the platform breaks, measures each step once "
        "settled, fits the Universal Scalability Law and says what capacity the national morning needs. "
        "`schoolsurge capacity fit FILE.csv [--n COLUMN --x COLUMN] [--json]` fits any concurrency/throughput table.",
    )
    _add_run_arguments(capacity, defaults="the sweep's, from the plan")
    capacity.add_argument("--steps", type=sweep_steps, default=DEFAULT_STEPS, help="load steps (default 10)")
    capacity.add_argument("--low", type=positive_number, help="lowest step, x the national peak arrival rate")
    capacity.add_argument("--high", type=positive_number, help="highest step, x the national peak arrival rate")
    capacity.add_argument(
        "--step-duration",
        type=positive_number,
        help=f"seconds measured per settled step (default {DEFAULT_MEASURE_S:g})",
    )
    capacity.add_argument(
        "--settle", type=at_least_zero, help="settling per step, in mean sessions at the run's speed (default 3)"
    )
    capacity.add_argument("--stop-margin", type=stop_margin, help="stop once a step breaches an objective x this (5)")
    capacity.add_argument("--linear", action="store_true", help="linear steps (default: geometric)")
    capacity.add_argument(
        "--expected-capacity",
        type=positive_number,
        help="the target's expected capacity, x the national peak (default: the embedded platform's profile's; "
        "unknown: steps go up to 4x the peak)",
    )


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
    plan.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/first-day-2021.yaml")
    plan.add_argument("--scale", type=scale_fraction, help="fraction of people simulated (default: the scenario's)")
    plan.add_argument("--speed", type=speed_factor, help="time compression (default: the scenario's)")
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


def _run_request(args: argparse.Namespace) -> RunRequest:
    from schoolsurge.runner import RunRequest

    return RunRequest(
        scenario_path=args.scenario,
        target=args.target,
        scale=args.scale,
        speed=args.speed,
        seed=args.seed,
        processes=args.processes,
        reports_dir=args.reports_dir,
        allow_host=args.allow_host,
        fail_on_slo=getattr(args, "fail_on_slo", False),
        force=args.force,
        accounts=args.accounts,
        locustfile=args.locustfile,
        client_arguments=forwarded_client_arguments(args),
        profile=args.profile,
        junit=getattr(args, "junit", None),
        late_after_s=getattr(args, "late_after", None),
        drop_after_s=getattr(args, "drop_after", None),
        monitoring_arguments=forwarded_monitoring_arguments(args),
    )


def _ending(outcome: RunOutcome) -> int | None:
    """What every run prints last (validity, report) and its exit status when it is not a plain 0."""
    if outcome.refused is not None:  # its figures are only its first seconds': one line says why, nothing more
        from schoolsurge.report.outcome.health import refused_line

        print(refused_line(outcome.refused, outcome.run_dir), file=sys.stderr)
        return EXIT_USAGE
    if outcome.invalid_reason is not None:
        print(f"INVALID RUN ({outcome.invalid_reason}): it measured the load generator, not the platform")
    if outcome.report is not None:
        print(f"Report: {outcome.report}")
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return None if outcome.valid else EXIT_INVALID_RUN


def _run(args: argparse.Namespace) -> int:
    from schoolsurge.runner import run

    outcome = run(_run_request(args))
    if outcome.refused is None:
        for verdict in outcome.verdicts:
            print(f"SLO {verdict.line()}")
        if outcome.served is not None:
            print(f"Who got in: {outcome.served.line()}")
    ended = _ending(outcome)
    if ended is not None:
        return ended
    if args.fail_on_slo and not outcome.slo_met:
        return EXIT_SLO_BREACHED
    return 0


def _capacity(args: argparse.Namespace) -> int:
    from schoolsurge.models.sweep import SweepSettings
    from schoolsurge.runner import run

    given = {"low": args.low, "high": args.high, "measure_s": args.step_duration}
    given |= {"settle_sessions": args.settle, "stop_margin": args.stop_margin}
    try:
        settings = SweepSettings(
            steps=args.steps, linear=args.linear, **{k: v for k, v in given.items() if v is not None}
        )
    except ValueError as error:
        raise UsageError(f"{error}; change the sweep options") from None
    request = _run_request(args)
    request.sweep, request.sweep_capacity = settings, args.expected_capacity
    outcome = run(request)
    answer = outcome.run_dir / CAPACITY_JSON
    if answer.exists() and outcome.refused is None:
        figures = json.loads(answer.read_text(encoding="utf-8"))
        for line in figures.get("headline", []):
            print(line)
        if figures.get("operational_laws"):  # the platform's CPU bound beside the USL (docs/monitoring.md)
            print(figures["operational_laws"]["explanation"])
    return _ending(outcome) or 0


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


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="schoolsurge", description=__doc__)
    subparsers = parser.add_subparsers(
        dest="command", required=True, metavar="{target,run,capacity,capacity fit,report,compare,plan}"
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["capacity", "fit"]:
        argv = ["capacity-fit", *argv[2:]]
    _add_target(subparsers)
    _add_run(subparsers)
    _add_capacity(subparsers)
    _add_capacity_fit(subparsers)
    _add_report(subparsers)
    _add_compare(subparsers)
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
