"""Runs CI can trust: a run whose generator could not keep the clock is invalid (manifest, report, exit 4),
the verdicts and the validity come out as JUnit XML, and a profile chosen outside the scenario wins."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from schoolsurge.cli import EXIT_INVALID_RUN, main
from schoolsurge.rundir import MANIFEST, REPORT
from schoolsurge.runner import RunOutcome

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"


def _cases(junit: Path) -> dict[str, ET.Element]:
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    return {case.get("name", ""): case for case in suite.iter("testcase")}


def test_a_generator_bound_run_is_invalid_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every start delay counts as late (--late-after 0): no generator keeps that clock, so the run is invalid.
    # The environment picks the profile (the smoke scenario names `resized`): the command line's choice wins.
    monkeypatch.setenv("SCHOOLSURGE_PROFILE", "undersized-2021")
    junit = tmp_path / "junit" / "run.xml"
    arguments = ["run", str(SMOKE), "--speed", "240", "--late-after", "0", "--reports-dir", str(tmp_path)]
    code = main([*arguments, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == EXIT_INVALID_RUN, out
    assert "INVALID RUN (generator-bound:" in out
    run_dir = next(p.parent for p in tmp_path.glob("*/manifest.json"))
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["valid"] is False and "arrivals late" in manifest["invalid_reason"]
    assert manifest["profile"] == "undersized-2021"
    assert "INVALID RUN (generator-bound" in (run_dir / REPORT).read_text()
    validity = _cases(junit)["run is valid (smoke)"]
    failure = validity.find("failure")
    assert failure is not None and failure.get("type") == "invalid"


def test_a_healthy_run_is_valid_and_its_verdicts_are_junit_test_cases(smoke_run: RunOutcome, smoke_junit: Path) -> None:
    outcome, junit = smoke_run, smoke_junit
    assert outcome.valid and outcome.slo_met
    assert json.loads((outcome.run_dir / MANIFEST).read_text())["valid"] is True
    cases = _cases(junit)
    assert set(cases) == {"run is valid (smoke)", *(v.objective for v in outcome.verdicts)}
    assert all(case.find("failure") is None for case in cases.values())
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(cases)) and suite.get("failures") == "0"
