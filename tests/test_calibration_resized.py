"""The resized profile on the whole first-day replay: its SLOs are met and the run agrees with the plan
(tests/calibration_replay.py)."""

from __future__ import annotations

import math

import pytest
from calibration_replay import first_day_replay
from conftest import assert_measured_the_platform

from schoolsurge.report import load_run
from schoolsurge.report.outcome.against_plan import plan_agreement
from schoolsurge.report.outcome.answer import read_answer
from schoolsurge.runner import RunOutcome

PLAN_TOLERANCE = 0.10


def tolerance(figure: str, planned: float) -> float:
    """10%, or for a peak count of people one standard deviation of that count (1 / sqrt(n)) when larger: at
    1e-4 of the nation about 40 pupils are in a virtual class at once, and their peak second varies by 6."""
    if figure.endswith("peak") and figure.startswith("people"):
        return max(PLAN_TOLERANCE, 1 / math.sqrt(max(planned, 1.0)))
    return PLAN_TOLERANCE


pytestmark = pytest.mark.long  # a whole morning replayed: 150 s of load (make test-long)


@pytest.fixture(scope="module")
def resized(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return first_day_replay(tmp_path_factory, "resized")


def test_the_resized_profile_meets_its_slos_without_a_bubble(resized: RunOutcome) -> None:
    assert_measured_the_platform(resized.run_dir)
    assert resized.slo_met, [v.line() for v in resized.verdicts]
    assert resized.served is not None and resized.served.share == 1.0
    sessions = load_run(resized.run_dir).sessions
    assert sessions["login_retries"].sum() <= 0.01 * sessions["started"].sum()


def test_the_resized_profile_agrees_with_the_plan(resized: RunOutcome) -> None:
    assert_measured_the_platform(resized.run_dir)
    agreement = plan_agreement(load_run(resized.run_dir))
    figures = {a.figure for a in agreement}
    assert {"people in a session, peak", "people in a virtual class, mean", "requests per second, peak"} <= figures
    assert "virtual classes opened" in figures
    off = [
        f"{a.figure}: planned {a.planned:.1f}, measured {a.measured:.1f}"
        for a in agreement
        if not a.within(tolerance(a.figure, a.planned))
    ]
    assert not off, off


@pytest.mark.long
def test_the_answer_of_the_resized_morning_names_what_binds_or_why_not(resized: RunOutcome) -> None:
    """answer.json of the resized morning: held or not as its verdicts say, and what binds named from the
    evidence, or "not determined" with the reason (never two contradicting sentences)."""
    answer = read_answer(resized.run_dir)
    assert answer is not None and answer.held is resized.slo_met
    assert answer.binds_determined or answer.binds.startswith("not determined: "), answer.binds
    assert answer.served is not None and answer.served.share == 1.0
    capacity = answer.capacity
    assert capacity is not None
    if capacity.held_per_s is not None and capacity.broke_per_s is not None:
        assert capacity.held_per_s < capacity.broke_per_s
