"""The end of a run, however it started: one function records how it ended, judges whether it is valid, writes
its report, refreshes the reports index, writes the JUnit file asked for, prints the run's last lines and says
its exit status.

    outcome = conclude(run_dir, LocustExit(code, interrupted), junit=path)   # schoolsurge run / capacity
    outcome = conclude(run_dir)                                              # plain locust (the locustfile)

`schoolsurge run` and `schoolsurge capacity` call it once their Locust has exited; a plain `locust -f` run calls
it from the locustfile once the engine has written its files, when the run directory is its own. It reads only
the run directory (engine/results.py writes it; the engine judges nothing).

What a run says last is its answer (answer.json, report/outcome/answer.py: held or not, who got in, capacity,
instances, what binds, confidence; Locust's statistics tables stay in locust.log). Then, whatever the kind, what
the client's crashes did (a step that raised in the client), INVALID RUN when the load generator or the machine the
platform ran on was the bottleneck or the client is broken (its own exit status), and where the report is. A run
the loopback guard stopped says only that, on stderr.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from schoolsurge.errors import ReportError, RunError
from schoolsurge.exit_status import (
    EXIT_CLIENT_BROKEN,
    EXIT_INTERRUPTED,
    EXIT_INVALID_RUN,
    EXIT_SLO_BREACHED,
    EXIT_USAGE,
)
from schoolsurge.report import Verdict, judge_run, load_run, write_report
from schoolsurge.report.outcome.answer import Answer
from schoolsurge.report.outcome.health import health, invalid_line, refused_line, run_refused
from schoolsurge.report.outcome.junit import write_junit
from schoolsurge.report.outcome.served import ServedShare, served_share
from schoolsurge.report.refresh import refresh_index
from schoolsurge.rundir import (
    LOCUST_LOG,
    RunStatus,
    finish_manifest,
    read_manifest,
    update_manifest,
)


@dataclass(frozen=True)
class LocustExit:
    """How the Locust process `schoolsurge` started ended."""

    code: int | None  # its exit status; None when it never ended by itself (interrupted before it ran)
    interrupted: bool  # stopped by Ctrl-C or a stop signal (what was measured is kept)


@dataclass
class RunOutcome:
    run_dir: Path
    report: Path | None
    verdicts: list[Verdict]
    interrupted: bool
    served: ServedShare | None = None
    invalid_reason: str | None = None  # "generator-bound: ..." or "machine-bound: ..." (report/outcome/health.py)
    refused: str | None = None  # why the loopback guard stopped the run, when it did (manifest `stopped_by`)
    client_broken: bool = False  # invalid because a large share of the journeys crashed in the client
    crashes: str | None = None  # what the client's crashes did, when it had any (Health.crash_line)
    exit_status: int = 0  # what `schoolsurge` exits with
    answer: Answer | None = None  # the run's answer, as answer.json holds it (None: no report was written)

    @property
    def slo_met(self) -> bool:
        return all(v.met for v in self.verdicts)

    @property
    def valid(self) -> bool:
        return self.invalid_reason is None


def conclude(
    run_dir: Path, locust: LocustExit | None = None, junit: Path | None = None, fail_on_slo: bool = False
) -> RunOutcome:
    """End the run in `run_dir`. `locust` is how its Locust process ended, when `schoolsurge` started one (None:
    this is that process, and the engine has recorded how the run ended). Raises RunError, once everything is
    written, when that Locust failed."""
    interrupted = locust is not None and locust.interrupted
    if locust is None:
        manifest = read_manifest(run_dir)
    else:
        status = _status(read_manifest(run_dir).status, locust)
        manifest = finish_manifest(run_dir, status, locust_exit_code=locust.code)
    outcome = _judge(run_dir, interrupted, run_refused(manifest))
    if junit is not None:
        write_junit(junit, manifest.scenario or run_dir.name, outcome.verdicts, outcome.invalid_reason)
    if locust is not None and locust.code not in (0, None) and not interrupted:
        raise RunError(f"Locust exited with status {locust.code}; see {run_dir / LOCUST_LOG}")
    _say(outcome)
    return replace(outcome, exit_status=_exit_status(outcome, fail_on_slo))


def _status(written: RunStatus | None, locust: LocustExit) -> RunStatus:
    """How the run ended: as its Locust wrote it, unless that Locust failed or never wrote it."""
    if locust.interrupted:
        return RunStatus.INTERRUPTED
    if locust.code not in (0, None) or written not in tuple(RunStatus) or written == RunStatus.RUNNING:
        return RunStatus.FAILED
    return RunStatus(written)


def _judge(run_dir: Path, interrupted: bool, refused: str | None) -> RunOutcome:
    """Validity (recorded in the manifest), the report, the index and the verdicts; no report (one line says
    why) when the run directory cannot be read."""
    try:
        data = load_run(run_dir)  # once, for the validity, the report and the verdicts
    except ReportError as error:
        print(f"schoolsurge: no report: {error}", file=sys.stderr)
        return RunOutcome(run_dir, None, [], interrupted, refused=refused)
    run_health = health(data)
    invalid = run_health.invalid_reason()
    data.manifest = update_manifest(run_dir, valid=invalid is None, invalid_reason=invalid)
    written = write_report(data, run_health)  # the answer judged on the same health: one judgement of validity
    refresh_index(run_dir.parent)
    return RunOutcome(
        run_dir,
        written.path,
        judge_run(data),
        interrupted,
        served_share(data),
        invalid,
        refused,
        client_broken=run_health.client_broken,
        crashes=run_health.crash_line(),
        answer=written.answer,
    )


def _say(outcome: RunOutcome) -> None:
    if outcome.refused is not None:  # its figures are only its first seconds': one line says why, nothing more
        print(refused_line(outcome.refused, outcome.run_dir), file=sys.stderr, flush=True)
        return
    answer = outcome.answer
    for line in answer.lines() if answer is not None else _verdict_lines(outcome):
        print(line, flush=True)
    if outcome.crashes is not None:
        print(outcome.crashes, flush=True)
    if outcome.invalid_reason is not None and answer is None:  # an answer says it first
        print(invalid_line(outcome.invalid_reason), flush=True)
    if outcome.report is not None:
        print(f"Report: {outcome.report}", flush=True)


def _verdict_lines(outcome: RunOutcome) -> list[str]:
    """Without an answer (answer.json is written with the report, and no report was), the verdicts judged."""
    return [f"SLO {verdict.line()}" for verdict in outcome.verdicts]


def _exit_status(outcome: RunOutcome, fail_on_slo: bool) -> int:
    if outcome.refused is not None:
        return EXIT_USAGE
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    if outcome.client_broken:
        return EXIT_CLIENT_BROKEN
    if not outcome.valid:
        return EXIT_INVALID_RUN
    if fail_on_slo and not outcome.slo_met:
        return EXIT_SLO_BREACHED
    return 0
