"""One definition per figure (schoolsurge/rundir/figures.py): time to log in over everyone who tried, a
percentile judged only with enough people, said without "inf", and held/broke on the load offered."""

from __future__ import annotations

from schoolsurge.engine.kinds.sweep import step_breaches
from schoolsurge.rundir import login_percentile, min_people, new_histogram, offered_range
from schoolsurge.scenario import Slo


def test_the_minimum_people_of_a_percentile_puts_one_person_in_its_tail() -> None:
    assert (min_people(50), min_people(95), min_people(99)) == (2, 20, 100)


def test_a_percentile_says_who_never_logged_in_never_inf() -> None:
    times = new_histogram()
    for _ in range(90):
        times.record_value(100)
    figure = login_percentile(times, 10, 95)
    assert figure.tried == 100 and figure.meets(2000) is False
    assert figure.text() == "10 of 100 never logged in (gave up or unfinished)"
    assert "inf" not in figure.text()
    assert login_percentile(times, 10, 50).text() == "100 ms"


def test_a_p99_of_too_few_people_judges_nothing() -> None:
    times = new_histogram()
    for _ in range(45):
        times.record_value(100)
    figure = login_percentile(times, 1, 99)
    assert figure.meets(5000) is None
    assert figure.text() == "not enough people (46 < 100)"


def test_a_sweep_step_of_46_people_is_not_stopped_by_one_who_gave_up() -> None:
    """Step 7 of the default sweep: 46 people, 1 gave up, p99 = inf; the p99 needs 100 people to judge."""
    slo = Slo(login_p50_ms=500, login_p95_ms=2000, login_p99_ms=5000, error_ratio=0.01)
    row = {
        "arrivals": 46,
        "gave_up": 1,
        "time_to_login_p50_ms": 85,
        "time_to_login_p95_ms": 883,
        "time_to_login_p99_ms": float("inf"),
        "error_ratio": 0.0,
    }
    assert step_breaches(row, slo, 1.0) == []
    row["arrivals"] = 120
    breaches = step_breaches(row, slo, 1.0)
    assert breaches == ["login p99: 1 of 120 gave up (objective 5000 ms)"]
    assert not any("inf" in breach for breach in breaches)


def test_held_is_never_above_broke_on_offered_load() -> None:
    """A quiet stretch that held above the lowest offered load that broke says nothing of the limit."""
    judged = [(1.0, True), (2.0, True), (3.0, False), (4.0, True), (2.5, True)]
    found = offered_range(judged)
    assert (found.held, found.broke) == (2.5, 3.0)
    assert found.within is not None and abs(found.within - 0.2) < 1e-9
