"""Runs CI can trust: the verdicts and the validity come out as JUnit XML, the platform side of validity, and one
judgement of it for the manifest, the report, the answer and the console. Real runs made invalid by the generator
or the machine: tests/test_invalid_runs.py."""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_measured_the_platform, junit_cases

from schoolsurge.conclude import conclude
from schoolsurge.report.outcome import health as health_module
from schoolsurge.report.outcome.health import Health, PlatformProcessHealth
from schoolsurge.rundir import MANIFEST
from schoolsurge.runner import RunOutcome


def test_a_healthy_run_is_valid_and_its_verdicts_are_junit_test_cases(smoke_run: RunOutcome, smoke_junit: Path) -> None:
    outcome, junit = smoke_run, smoke_junit
    assert_measured_the_platform(outcome.run_dir)
    assert outcome.valid and outcome.slo_met
    assert json.loads((outcome.run_dir / MANIFEST).read_text())["valid"] is True
    cases = junit_cases(junit)
    assert set(cases) == {"run is valid (smoke)", *(v.objective for v in outcome.verdicts)}
    assert all(case.find("failure") is None for case in cases.values())
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(cases)) and suite.get("failures") == "0"


@pytest.mark.parametrize(
    ("figures", "reason"),
    [
        ({"shed_by_reason": {"queue_timeout": 30.0}}, "30 of 1,000 requests refused at the platform's machine-level"),
        ({"platform_process": PlatformProcessHealth(2, 2.5, 1.0, 2.0)}, "event loops stalled 2.5 s of 40"),
        ({"platform_process": PlatformProcessHealth(2, 0.5, 1.0, 12.0)}, "waited 12.0 s of 40 worker-seconds"),
        ({"platform_process": PlatformProcessHealth(2, 0.8, 2.0, 6.4)}, None),  # stress-ng --cpu 2 beside a smoke run
        ({"shed_by_reason": {"login_rate": 300.0}}, None),  # the profile refusing: the rehearsal's outcome
    ],
)
def test_the_platform_side_of_validity(figures: dict[str, Any], reason: str | None) -> None:
    # 1,000 requests over a 20-second run on two workers (40 worker-seconds).
    judged = Health(arrivals=100, requests=1_000, run_s=20.0, **figures).invalid_reason()
    if reason is None:
        assert judged is None
    else:
        assert judged is not None and judged.startswith("machine-bound: ") and reason in judged, judged


def test_a_generator_bound_run_says_so_first_whatever_the_platform() -> None:
    starved = PlatformProcessHealth(2, 20.0, 1.0, 20.0)
    judged = Health(arrivals=100, late=50, requests=1_000, run_s=20.0, platform_process=starved).invalid_reason()
    assert judged is not None and judged.startswith("generator-bound: "), judged


def test_a_run_is_judged_valid_once_for_the_manifest_the_report_the_answer_and_the_console(
    smoke_run: RunOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22: the end of a run judged its validity for the manifest, again for the report, twice more for the
    answer (its verdict and what binds), and the console re-read answer.json; now one judgement (the run's
    health) serves them all, and the console says the answer it was given."""
    copy = tmp_path / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, copy)
    judged: list[Path] = []

    def counted(data: Any) -> Health:
        judged.append(data.run_dir)
        return health_module.health(data)

    for module in list(sys.modules.values()):  # every module of the suite that calls health() by its name
        suite = module is not None and module.__name__.startswith("schoolsurge.") and module is not health_module
        if suite and getattr(module, "health", None) is health_module.health:
            monkeypatch.setattr(module, "health", counted)
    outcome = conclude(copy)
    assert judged == [copy], "one judgement of validity"
    out = capsys.readouterr().out
    answer = json.loads((copy / "answer.json").read_text())
    assert outcome.valid and outcome.answer is not None and outcome.answer.lines() == answer["lines"]
    assert out.splitlines()[: len(answer["lines"])] == answer["lines"]
