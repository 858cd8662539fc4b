"""The run's kind picks what the report makes of it, once, from the manifest (or plain Locust output): a morning
is judged on its SLO window, a sweep step by step; the index and comparisons list them by kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schoolsurge.report import load_run
from schoolsurge.report.index import summarize_run
from schoolsurge.report.kinds import MorningKind, PlainLocustKind, SweepKind
from schoolsurge.rundir import MANIFEST, SESSIONS_CSV, STATS_CSV

STATS = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n,Aggregated,0,0,0,0,0,0\n"


def _run_dir(tmp_path: Path, manifest: dict | None, *files: str) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / STATS_CSV).write_text(STATS)
    if manifest is not None:
        (run_dir / MANIFEST).write_text(json.dumps(manifest))
    for name in files:
        (run_dir / name).write_text("second\n")
    return run_dir


@pytest.mark.parametrize(
    ("manifest", "files", "kind", "label"),
    [
        ({"scenario": "smoke", "processes": 1}, (), MorningKind, "run"),  # schoolsurge run
        ({"scenario": "smoke"}, (), MorningKind, "plain locust"),  # locust -f locustfiles/surge.py
        ({"scenario": "smoke", "arrival_model": "closed", "processes": 1}, (), MorningKind, "run"),  # schema 1
        ({"scenario": "smoke", "kind": "closed"}, (), MorningKind, "plain locust"),
        ({"scenario": "smoke", "kind": "sweep", "processes": 1}, (), SweepKind, "sweep"),
        (None, (), PlainLocustKind, "plain locust"),  # locust --csv: Locust's files alone
        (None, (SESSIONS_CSV,), MorningKind, "plain locust"),  # the engine's files, the manifest lost
    ],
)
def test_the_manifest_picks_the_kind_of_report(
    tmp_path: Path, manifest: dict | None, files: tuple[str, ...], kind: type, label: str
) -> None:
    data = load_run(_run_dir(tmp_path, manifest, *files))
    assert type(data.kind) is kind and data.kind.label(data.manifest) == label
    assert summarize_run(data.run_dir)["kind"] == label


def test_a_sweep_is_judged_step_by_step_and_a_morning_on_its_window() -> None:
    assert MorningKind.judged_on_the_morning and MorningKind.counts_unfinished
    assert not SweepKind.judged_on_the_morning and not SweepKind.counts_unfinished
    assert SweepKind.without_steps_notes and not MorningKind.without_steps_notes
