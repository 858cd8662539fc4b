"""The capacity sweep: its schedule (pure), then a real sweep against the embedded platform: steps settled
before they are measured, people in a session as Little's law says on a healthy platform, and the stop rule
ending the sweep once a step breaks the SLOs by the margin, with the steps it skipped listed."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_measured_the_platform

from schoolsurge.accounts import Roster
from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.models.sweep import SweepSettings, arrival_shares, mean_session_s
from schoolsurge.rundir import CAPACITY_CSV, CAPACITY_JSON, SESSIONS_CSV, StepStatus, read_manifest
from schoolsurge.runner import RunOutcome, RunRequest, profile_capacity, run
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"
PUPILS = Path(__file__).resolve().parent / "data" / "sweep-pupils.yaml"
SPEED = 150.0
MEASURE_S = 8.0
STEP_RATIO = 5.0  # step 2 at 0.4x the profile's capacity, step 3 at 2x: healthy, healthy, broken, skipped
STEP_2 = 0.4
PEOPLE_AT_STEP_2 = 25  # in a session at once: enough for Little's law to be checked


def test_schedule_offers_each_steps_rate_in_the_scenarios_mix() -> None:
    scenario = load_scenario(FIRST_DAY)
    replay = sweep_replay(scenario, SweepSettings(steps=4, low=0.1, high=1.0), scale=1e-4, speed=60)
    schedule = replay.schedule(seed=3)
    assert [a.at_s for a in schedule] == sorted(a.at_s for a in schedule)
    for step, rate in enumerate(replay.rates):
        start, _, end = replay.step_bounds(step)
        count = sum(start <= a.at_s < end for a in schedule)
        assert abs(count - rate * replay.step_s) <= 1, f"step {step + 1}: {count} arrivals at {rate:.2f}/s"
    shares = arrival_shares(scenario)
    for name, share in shares.items():
        drawn = sum(a.group == name for a in schedule) / len(schedule)
        assert drawn == pytest.approx(share, abs=4 * math.sqrt(share * (1 - share) / len(schedule)))
    # The rates are the plan's national peak arrival rate x multiple, in run terms.
    assert replay.rates[-1] == pytest.approx(replay.national_peak_arrivals_per_s * 1.0 * 1e-4 * 60)
    assert replay.settle_s == pytest.approx(3 * mean_session_s(scenario) / 60)


def test_schedule_reuses_accounts_the_roster_has_without_overlap_at_the_top_step() -> None:
    scenario = load_scenario(FIRST_DAY)
    replay = sweep_replay(scenario, SweepSettings(), scale=5e-5, speed=150)
    schedule = replay.schedule(seed=1)
    roster = Roster(0, replay.platform_pupils)
    need: dict[str, int] = {}
    for group in scenario.groups:
        persons = {a.person for a in schedule if a.group == group.name}
        assert max(persons) < replay.people_of(group)
        need[group.persona] = need.get(group.persona, 0) + replay.people_of(group)
        # A person comes back only after more people than the group has in a session at the top step.
        in_session = replay.rates[-1] * arrival_shares(scenario)[group.name] * group.session.mean_minutes * 60 / 150
        assert replay.people_of(group) > in_session
    for persona, count in need.items():
        assert roster.count(persona) >= count


@pytest.fixture(scope="module")
def pupils_sweep(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    scenario = load_scenario(PUPILS)
    capacity = profile_capacity(scenario, "resized")  # as a multiple of the national peak arrival rate
    low, high = STEP_2 * capacity / STEP_RATIO, STEP_2 * capacity * STEP_RATIO**2
    replay = sweep_replay(scenario, SweepSettings(steps=4), scale=1e-5, speed=SPEED)
    per_fraction = replay.national_peak_arrivals_per_s * STEP_2 * capacity * mean_session_s(scenario) / SPEED
    scale = PEOPLE_AT_STEP_2 / per_fraction / SPEED
    settings = SweepSettings(steps=4, low=low, high=high, measure_s=MEASURE_S)
    return run(
        RunRequest(
            scenario_path=PUPILS,
            target=None,
            scale=scale,
            speed=SPEED,
            reports_dir=tmp_path_factory.mktemp("sweeps"),
            sweep=settings,
        )
    )


def _steps(outcome: RunOutcome) -> pd.DataFrame:
    return pd.read_csv(outcome.run_dir / CAPACITY_CSV)


@pytest.mark.long  # the pupils' sweep: minutes of real load
def test_stop_rule_ends_the_sweep_at_the_broken_step_and_lists_the_skipped(pupils_sweep: RunOutcome) -> None:
    assert_measured_the_platform(pupils_sweep.run_dir)
    steps = _steps(pupils_sweep)
    assert list(steps["status"]) == [StepStatus.MEASURED, StepStatus.MEASURED, StepStatus.STOPPED, StepStatus.SKIPPED]
    broken = steps.iloc[2]
    assert not broken["slo_met"] and isinstance(broken["breaches"], str) and broken["breaches"]
    # Past 5x an objective: the error ratio (logins throttled at the profile's rate) or time to log in.
    assert broken["error_ratio"] > 5 * 0.01 or broken["time_to_login_p95_ms"] > 5 * 1500
    assert broken["failures_429_per_s"] + broken["failures_503_per_s"] > 0
    # The load stopped soon after the broken step: nothing was measured in the skipped one.
    sessions = pd.read_csv(pupils_sweep.run_dir / SESSIONS_CSV)
    last_started = sessions.loc[sessions["started"] > 0, "second"].max()
    assert last_started < steps.iloc[3]["measured_from_s"]
    manifest = read_manifest(pupils_sweep.run_dir)
    assert manifest.status == "completed" and manifest.kind == "sweep"


@pytest.mark.long  # the pupils' sweep: minutes of real load
def test_healthy_steps_are_measured_once_settled_and_obey_littles_law(pupils_sweep: RunOutcome) -> None:
    assert_measured_the_platform(pupils_sweep.run_dir)
    scenario = load_scenario(PUPILS)
    steps = _steps(pupils_sweep)
    sessions = pd.read_csv(pupils_sweep.run_dir / SESSIONS_CSV).set_index("second")
    mean_session_run_s = mean_session_s(scenario) / SPEED
    for step in steps.iloc[:2].itertuples():
        assert step.slo_met and step.error_ratio == 0
        assert step.measured_from_s - step.start_s == pytest.approx(3 * mean_session_run_s, abs=0.1)
        littles_law = step.offered_arrivals_per_s * mean_session_run_s
        assert step.concurrency == pytest.approx(littles_law, rel=0.3), f"step {step.step}"
        assert step.logins_per_s == pytest.approx(step.offered_arrivals_per_s, rel=0.3)
    # Step 1 rises from nobody: its settling part, left out, holds fewer people than its measured part (over
    # 3 mean sessions from nobody, at most 5/6 of the settled count: all sessions of the mean length).
    first = steps.iloc[0]
    settling = sessions.loc[: int(first["measured_from_s"]) - 1, "active_sessions"].mean()
    assert settling < 0.9 * first["concurrency"]


@pytest.mark.long  # the pupils' sweep: minutes of real load
def test_too_few_measured_steps_get_a_one_line_fit_error(
    pupils_sweep: RunOutcome, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["capacity", "fit", str(pupils_sweep.run_dir / CAPACITY_CSV)]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "4" in error


@pytest.mark.long  # the pupils' sweep: minutes of real load
def test_the_report_answers_first_and_capacity_json_holds_the_figures(pupils_sweep: RunOutcome) -> None:
    assert pupils_sweep.report is not None
    html = pupils_sweep.report.read_text(encoding="utf-8")
    assert html.index("Capacity") < html.index("Service-level objectives")
    assert (pupils_sweep.run_dir / CAPACITY_JSON).exists()
