"""What the report makes of each kind of run: picked once, from the manifest's kind (or plain Locust output,
which has no manifest), by `pick_kind`; every part of the report asks the kind, never the manifest's `kind`.

    MorningKind       a morning replayed (open arrivals on the scenario's schedule, or a closed-model run):
                      judged on the scenario's SLO window and clock (verdicts, who got in, against plan)
    SweepKind         a capacity sweep: its steps are not the morning; judged step by step (capacity.csv), drawn
                      in run seconds, people still logging in when a step ended are not "unfinished"
    PlainLocustKind   Locust's files alone (`locust --csv`, no engine): a morning's report of what Locust measured

To add a kind: a subclass saying what differs, and its RunKind in KINDS.
"""

from __future__ import annotations

from typing import ClassVar

from schoolsurge.rundir import CAPACITY_CSV, Manifest, RunKind


class ReportKind:
    """What differs in the report between kinds of runs; a morning's answers by default."""

    # Judged on the scenario's SLO window and drawn on its clock: verdicts, who got in, the plan, the served
    # chart; the index shows its verdicts, a comparison takes its figures over the SLO window.
    judged_on_the_morning: ClassVar[bool] = True
    # People still logging in when the run ended were not served: the report says so first.
    counts_unfinished: ClassVar[bool] = True
    # Said on the capacity card when the run left no capacity.csv.
    without_steps_notes: ClassVar[tuple[str, ...]] = ()

    def label(self, manifest: Manifest) -> str:
        """As the index and comparisons list it."""
        raise NotImplementedError


class MorningKind(ReportKind):
    """A morning replayed: every section of the report applies."""

    def label(self, manifest: Manifest) -> str:
        """run (`schoolsurge run`), or plain locust (`locust -f`, which records no processes)."""
        return "run" if manifest.processes is not None else "plain locust"


class SweepKind(ReportKind):
    """A capacity sweep (`schoolsurge capacity`): judged step by step, its whole run drawn in run seconds."""

    judged_on_the_morning = False
    counts_unfinished = False  # a sweep stops mid-flow on purpose, its steps judged apart
    without_steps_notes = (f"This sweep left no {CAPACITY_CSV} (stopped before its first step ended?): read as a run.",)

    def label(self, manifest: Manifest) -> str:
        return "sweep"


class PlainLocustKind(ReportKind):
    """Locust's CSV files without the schoolsurge engine: no manifest, sessions or timeline."""

    def label(self, manifest: Manifest) -> str:
        return "plain locust"


KINDS: dict[RunKind, type[ReportKind]] = {
    RunKind.MORNING: MorningKind,
    RunKind.CLOSED: MorningKind,  # persona user classes replay the morning too; the report is a morning's
    RunKind.SWEEP: SweepKind,
}


def pick_kind(manifest: Manifest, engine_files: bool) -> ReportKind:
    """The report's kind of a run: its manifest's, or plain Locust when it has neither a manifest nor any of the
    engine's files (`engine_files`: sessions.csv, time_to_login.jsonl or timeline.json)."""
    if not manifest.present and not engine_files:
        return PlainLocustKind()
    return KINDS[manifest.kind]()
