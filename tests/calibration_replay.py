"""The 2021 morning replayed whole on the embedded platform, one profile per test module (so that the suite's
workers run the two replays side by side): at twice the default speed (150 s), bcrypt at cost 4 so that the
machine stays far from its limits: the profiles' national capacity, scaled to the run, is what binds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import run_measuring_the_platform

from schoolsurge.runner import RunOutcome, RunRequest

ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"
SPEED = 72  # twice the default: the outcome does not depend on it while the machine keeps up


def first_day_replay(tmp_path_factory: pytest.TempPathFactory, profile: str) -> RunOutcome:
    """A whole first-day replay against the embedded platform with this profile."""
    directory = tmp_path_factory.mktemp(profile)
    data = yaml.safe_load(FIRST_DAY.read_text(encoding="utf-8"))
    data["platform"] = {"hash_cost": 4, "profile": profile}
    scenario = directory / f"first-day-{profile}.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return run_measuring_the_platform(
        RunRequest(scenario_path=scenario, target=None, speed=SPEED, reports_dir=directory)
    )
