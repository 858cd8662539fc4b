"""The login-capacity model behind the undersized-2021 profile, and the virtual-class model behind the plan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from schoolsurge.models.calibration import _Admission, login_rate_for_share, simulate_logins
from schoolsurge.models.population import national_curves
from schoolsurge.models.virtual_classes import admissions
from schoolsurge.scenario import load_scenario

FIRST_DAY = load_scenario(Path(__file__).resolve().parent.parent / "scenarios" / "first-day-2021.yaml")


def test_admission_serves_at_its_rate_first_come_first_served_and_times_out() -> None:
    admission = _Admission(rate=2.0, timeout_s=1.0)  # 2 per second, a one-second burst of 2
    admitted = [admission.admit(10.0) for _ in range(6)]
    # Two at once (the burst), then one every half second while the wait stays within the timeout.
    assert admitted[:4] == [10.0, 10.0, 10.5, 11.0]
    assert admitted[4:] == [None, None], "later ones would wait more than a second: they time out"
    assert admission.admit(20.0) == 20.0, "capacity comes back when the load goes"


def test_more_login_capacity_serves_more_people_with_fewer_retries() -> None:
    outcomes = [simulate_logins(FIRST_DAY, rate, timeout_s=30) for rate in (100, 400, 1_000, 5_000)]
    shares = [o.served_share for o in outcomes]
    assert shares == sorted(shares) and shares[0] < 0.2 and shares[-1] == 1.0
    assert outcomes[0].attempts_per_person > 5 > outcomes[-1].attempts_per_person == 1.0, "the reconnection bubble"
    assert outcomes[0].gave_up == outcomes[0].tried - outcomes[0].served


def test_the_undersized_login_rate_serves_the_2021_share() -> None:
    rate = login_rate_for_share(FIRST_DAY, 0.37, timeout_s=30)
    assert 300 < rate < 500
    assert simulate_logins(FIRST_DAY, rate, timeout_s=30).served_share == pytest.approx(0.37, abs=0.01)


def test_pupils_who_come_before_their_teacher_wait_as_long_as_their_patience() -> None:
    seconds = 1000
    wanting = np.zeros(seconds)
    wanting[100] = 10.0  # ten pupils arrive at 100 s
    teacher = np.zeros(seconds)
    teacher[300] = 1.0  # their teacher at 300 s
    admitted = admissions(wanting, teacher, np.cumsum(teacher), patience_s=500)
    assert admitted[300] == pytest.approx(10.0) and admitted.sum() == pytest.approx(10.0)
    assert admissions(wanting, teacher, np.cumsum(teacher), patience_s=150).sum() == pytest.approx(0.0)
    early_teacher = np.zeros(seconds)
    early_teacher[50] = 1.0
    admitted = admissions(wanting, early_teacher, np.cumsum(early_teacher), patience_s=1)
    assert admitted[100] == pytest.approx(10.0), "the teacher was there: in at once"


def test_the_first_day_virtual_classes_reproduce_the_published_figures() -> None:
    classes = national_curves(FIRST_DAY).virtual_classes
    assert classes.total_opened == pytest.approx(150_000, rel=0.001)
    assert classes.total_joined == pytest.approx(1_202_000, rel=0.005)
    assert 0.8 < classes.join_probability["secondary-pupils"] < 0.95
    assert 8 <= classes.total_joined / classes.total_opened <= 10
