"""SLO verdicts, and the SLO window's arithmetic in the report's loader: pure numbers in, verdicts out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from schoolsurge.engine.ledger import Ledger, write_sessions_csv
from schoolsurge.report.load.run_data import RunData, RunTotals
from schoolsurge.report.outcome.verdicts import judge
from schoolsurge.rundir import Counter, Manifest
from schoolsurge.scenario import Scenario, load_scenario
from schoolsurge.scenario.schema import Window

ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = load_scenario(ROOT / "scenarios" / "first-day-2021.yaml")  # SLOs p50 500, p95 2000, p99 5000, 1%
# The first day's SLO window (08:00-10:00) ends with its replay (07:00-10:00); here the replay goes on to 11:00.
LONGER_DAY = FIRST_DAY.model_copy(update={"window": Window(start="07:00", end="11:00")})


def test_every_objective_set_is_judged_at_its_threshold() -> None:
    totals = RunTotals("08:00-10:00", requests=1000, failures=10, logins=50, login_ms={50: 500, 95: 2001, 99: 10})
    verdicts = {v.objective.split(" (")[0]: v for v in judge(totals, FIRST_DAY.slo)}
    assert list(verdicts) == ["login p50", "login p95", "login p99", "error ratio"]
    assert verdicts["login p50"].met, "at the threshold is met"
    assert not verdicts["login p95"].met
    assert verdicts["error ratio"].met and "1.00% of 1000 requests" in verdicts["error ratio"].measured
    assert verdicts["login p95"].line().endswith("-> BREACHED")


def test_nothing_measured_meets_nothing() -> None:
    verdicts = judge(RunTotals("08:00-10:00", requests=0, failures=0, logins=0), FIRST_DAY.slo)
    assert not any(v.met for v in verdicts)
    assert verdicts[0].measured == "no login measured"


def _run_data(
    history_rows: list[tuple[float, str, int, int]], speed: float = 36.0, scenario: Scenario = FIRST_DAY
) -> RunData:
    """A loaded run with Locust's running totals at the given run seconds, per request name."""
    start = 1_000_000.0
    history = pd.DataFrame(
        [
            {"Timestamp": start + t, "Type": "GET", "Name": name, "Total Request Count": n, "Total Failure Count": f}
            for t, name, n, f in history_rows
        ]
    )
    last = history.groupby("Name").tail(1)
    stats = pd.DataFrame(
        {
            "Type": "GET",
            "Name": last["Name"],
            "Request Count": last["Total Request Count"],
            "Failure Count": last["Total Failure Count"],
        }
    )
    return RunData(Path("."), Manifest(), stats, history, pd.DataFrame(), scenario, speed=speed, test_start_unix=start)


def test_the_slo_window_is_converted_to_run_seconds_by_the_speed() -> None:
    data = _run_data([(0, "home", 0, 0)], speed=36.0)
    # 07:00 is run second 0; 08:00-10:00 is 3,600-10,800 scenario seconds later, divided by the speed.
    assert data.slo_seconds() == (100.0, 300.0)


WINDOW_ROWS = [(50, "home", 100, 1), (99, "home", 200, 2), (150, "home", 500, 40), (299, "home", 900, 50)]
WINDOW_ROWS += [(301, "home", 1000, 51), (99, "homework", 10, 0), (299, "homework", 30, 5), (310, "homework", 35, 5)]


def test_requests_in_the_window_are_the_difference_of_running_totals() -> None:
    totals = _run_data(WINDOW_ROWS, scenario=LONGER_DAY).totals()
    # Before 100 s: home 200/2 and homework 10/0; before 300 s: home 900/50 and homework 30/5.
    assert (totals.requests, totals.failures) == (900 + 30 - 200 - 10, 50 + 5 - 2 - 0)
    assert totals.window == "08:00-10:00"


def test_a_window_that_ends_with_the_replay_takes_in_what_completed_as_it_drained() -> None:
    # 10:00 ends the replay: what completed after it (its last sessions' requests, those left unanswered at the
    # end of the test, failed) was asked for by the window's people.
    totals = _run_data(WINDOW_ROWS).totals()
    assert (totals.requests, totals.failures) == (1000 + 35 - 200 - 10, 51 + 5 - 2 - 0)


def test_a_run_that_ended_inside_the_window_is_closed_by_its_final_totals() -> None:
    totals = _run_data([(50, "home", 100, 1), (120, "home", 400, 9), (200, "home", 600, 10)]).totals()
    assert (totals.requests, totals.failures) == (600 - 100, 10 - 1)


def test_people_still_logging_in_at_the_end_never_logged_in(tmp_path: Path) -> None:
    """Half the people due in the window logged in fast, the other half were still waiting for an answer when
    the run ended: the percentiles count them as never logged in, so the login objectives cannot be met."""
    ledger = Ledger()
    for person in range(100):
        second = 100 + person  # 08:00 is run second 100
        if person % 2:
            ledger.count(second, Counter.UNFINISHED)
        else:
            ledger.time_to_login(second, 80)
    write_sessions_csv(ledger, tmp_path / "sessions.csv")
    data = _run_data([(299, "home", 100, 0)])
    data.sessions = pd.read_csv(tmp_path / "sessions.csv")
    data.histograms = {s: b.time_to_login for s, b in ledger.seconds.items() if b.time_to_login is not None}
    totals = data.totals()
    assert totals.unfinished == 50 and totals.logins == 50
    verdicts = {v.objective.split(" (")[0]: v for v in judge(totals, FIRST_DAY.slo)}
    # The 50th of 100 is the slowest who logged in; the 95th and 99th never did.
    assert verdicts["login p50"].met and verdicts["login p50"].measured.startswith("80 ms")
    assert "over the 100 people who tried (50 never logged in)" in verdicts["login p50"].measured
    for slower in ("login p95", "login p99"):
        assert not verdicts[slower].met
        assert verdicts[slower].measured == "50 of 100 never logged in (gave up or unfinished)"


def test_people_who_gave_up_count_as_never_logged_in(tmp_path: Path) -> None:
    """The run's login percentiles are over everyone who tried, as the capacity card's and the sweep's are:
    60 of 100 gave up, so the p50 is not the median of the 40 who got in (one definition: rundir/figures.py)."""
    ledger = Ledger()
    for person in range(100):
        second = 100 + person
        if person < 60:
            ledger.count(second, Counter.ABANDONED)
        else:
            ledger.time_to_login(second, 80)
    write_sessions_csv(ledger, tmp_path / "sessions.csv")
    data = _run_data([(299, "home", 100, 0)])
    data.sessions = pd.read_csv(tmp_path / "sessions.csv")
    data.histograms = {s: b.time_to_login for s, b in ledger.seconds.items() if b.time_to_login is not None}
    verdicts = {v.objective.split(" (")[0]: v for v in judge(data.totals(), FIRST_DAY.slo)}
    assert not verdicts["login p50"].met
    assert verdicts["login p50"].measured == "60 of 100 never logged in (gave up or unfinished)"
