"""The capacity sweep: its schedule (pure), then a real sweep against the embedded platform: steps settled
before they are measured, people in a session as Little's law says on a healthy platform, and the stop rule
ending the sweep once a step breaks the SLOs by the margin, with the steps it skipped listed; a sweep whose plan
brackets the break refines the range by bisection with measured steps."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_measured_the_platform, cmdline, descendants, run_measuring_the_platform

from schoolsurge.accounts import Roster
from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.engine.kinds.sweep import JUDGE_AFTER_S, REFINE_LEAD_S
from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.queue import ArrivalQueue
from schoolsurge.models.sweep import RefineStep, SweepSettings, arrival_shares, mean_session_s
from schoolsurge.rundir import (
    ANSWER_JSON,
    CAPACITY_CSV,
    CAPACITY_JSON,
    SESSIONS_CSV,
    Counter,
    StepPhase,
    StepStatus,
    offered_range,
    read_manifest,
)
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
REFINE_WITHIN = 0.6  # from the plan's 400% wide range (0.4x to 2x the capacity), 2 bisections reach 50%
REFINE_STEPS = 3


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


def test_a_refinement_step_replaces_the_planned_arrivals_from_its_start_on() -> None:
    """What every process does with a refinement step the master chose: the same arrivals from the seed and the
    step, each group's people continuing after the planned ones, and its queue holding them instead of the
    planned arrivals from the step's start (their scheduled counts undone)."""
    replay = sweep_replay(load_scenario(PUPILS), SweepSettings(steps=3, low=0.1, high=1.0), scale=1e-4, speed=SPEED)
    planned = replay.schedule_arrays(seed=5)
    step = RefineStep(3, replay.rates[1] * 1.5, start_s=40.0, first_person=replay.people_drawn(planned))
    arrivals = replay.refinement_arrays(5, step)
    again = replay.refinement_arrays(5, RefineStep.from_wire(step.to_wire()))
    assert list(arrivals) == list(again)
    assert abs(len(arrivals) - step.rate * replay.step_s) <= 1
    assert arrivals.at_s.min() >= step.start_s and arrivals.at_s.max() < replay.bounds_from(step.start_s)[2]
    for number, group in enumerate(replay.scenario.groups):
        first = arrivals.person[arrivals.group == number][0]
        assert first == step.first_person[number] % replay.people_of(group)
    ledger = Ledger()
    queue = ArrivalQueue(ledger, clock=lambda: 1000.0)
    queue.load(planned, start_unix=1000.0)
    queue.replace_from(step.start_s, arrivals)
    kept = int((planned.at_s < step.start_s).sum())
    assert queue.remaining == kept + len(arrivals) == ledger.total(Counter.SCHEDULED)


def _pupils_scale(scenario_path: Path) -> tuple[float, float]:
    """(capacity as a multiple of the peak, scale) at which STEP_2 x capacity keeps PEOPLE_AT_STEP_2 in a session."""
    scenario = load_scenario(scenario_path)
    capacity = profile_capacity(scenario, "resized")  # as a multiple of the national peak arrival rate
    replay = sweep_replay(scenario, SweepSettings(steps=4), scale=1e-5, speed=SPEED)
    per_fraction = replay.national_peak_arrivals_per_s * STEP_2 * capacity * mean_session_s(scenario) / SPEED
    return capacity, PEOPLE_AT_STEP_2 / per_fraction / SPEED


@pytest.fixture(scope="module")
def pupils_sweep(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    capacity, scale = _pupils_scale(PUPILS)
    low, high = STEP_2 * capacity / STEP_RATIO, STEP_2 * capacity * STEP_RATIO**2
    settings = SweepSettings(steps=4, low=low, high=high, measure_s=MEASURE_S, refine_steps=0)  # the plan alone
    return run_measuring_the_platform(
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


@pytest.fixture(scope="module", params=[None, 2], ids=["one-process", "master-and-2-workers"])
def refined_sweep(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> RunOutcome:
    """Two planned steps, one that holds (STEP_2 x the profile's capacity) and one that breaks (5 times higher):
    the refinement bisects between them, in one Locust process and with workers (whom the master sends each
    refinement step)."""
    capacity, scale = _pupils_scale(PUPILS)
    low, high = STEP_2 * capacity, STEP_2 * capacity * STEP_RATIO
    settings = SweepSettings(
        steps=2, low=low, high=high, measure_s=MEASURE_S, refine_within=REFINE_WITHIN, refine_steps=REFINE_STEPS
    )
    return run_measuring_the_platform(
        RunRequest(
            scenario_path=PUPILS,
            target=None,
            scale=scale,
            speed=SPEED,
            processes=request.param,
            reports_dir=tmp_path_factory.mktemp("refined"),
            sweep=settings,
        )
    )


@pytest.mark.long  # a sweep of 2 planned and up to 3 refinement steps: minutes of real load
def test_refinement_narrows_the_range_with_measured_steps(refined_sweep: RunOutcome) -> None:
    assert_measured_the_platform(refined_sweep.run_dir)
    # Every worker applied each refinement step before its start, and said so: none is late to one.
    assert read_manifest(refined_sweep.run_dir).late_workers == []
    steps = _steps(refined_sweep)
    planned = steps[steps["phase"] == StepPhase.PLANNED]
    refined = steps[steps["phase"] == StepPhase.REFINEMENT]
    assert list(planned["slo_met"]) == [True, False], "the plan brackets the break"
    first = offered_range(zip(planned["offered_arrivals_per_s"], planned["slo_met"], strict=True))
    assert 1 <= len(refined) <= REFINE_STEPS
    assert set(refined["status"]) == {StepStatus.MEASURED}
    # Each refinement step is a real step: settled as the planned ones, people measured, judged, and as many
    # people in a session as Little's law says at least (their sessions are not cut at the plan's end; a step
    # past capacity keeps people longer, not shorter).
    mean_session_run_s = mean_session_s(load_scenario(PUPILS)) / SPEED
    for step in refined.itertuples():
        assert step.measured_from_s - step.start_s == pytest.approx(planned.iloc[0]["measured_from_s"], abs=0.1)
        assert step.arrivals > 0 and step.slo_met in (True, False)
        assert first.held < step.offered_arrivals_per_s < first.broke
        assert step.concurrency > 0.5 * step.offered_arrivals_per_s * mean_session_run_s, f"step {step.step}"
    # The final range's ends are measured steps, and it is narrower than the plan's bracketing pair.
    judged = steps[steps["status"].isin([StepStatus.MEASURED, StepStatus.STOPPED])]
    final = offered_range(zip(judged["offered_arrivals_per_s"], judged["slo_met"], strict=True))
    assert final.held in set(judged["offered_arrivals_per_s"]) and final.broke in set(judged["offered_arrivals_per_s"])
    assert final.within < first.within
    # The answer says how many refinement steps ran and the width reached: within what was asked, or the budget.
    answer = json.loads((refined_sweep.run_dir / ANSWER_JSON).read_text())
    assert answer["capacity"]["held_per_s"] == pytest.approx(final.held)
    assert answer["capacity"]["broke_per_s"] == pytest.approx(final.broke)
    confidence = answer["confidence"]
    count = f"{len(refined)} refinement step{'s' if len(refined) != 1 else ''}"
    assert f"{count} near the break left it {final.within:.0%} wide" in confidence
    if final.within <= REFINE_WITHIN:
        assert f"within the {REFINE_WITHIN:.0%} asked" in confidence
    else:
        assert len(refined) == REFINE_STEPS and f"budget of {REFINE_STEPS} steps ran out" in confidence


def _locust_workers(pid: int) -> list[int]:
    """The Locust workers below `pid`: forked by their master (`--processes`), each a child of another Locust
    process."""
    parents: dict[int, int] = {}
    for child in descendants(pid):
        with contextlib.suppress(OSError, IndexError):
            parents[child] = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
    locust = {child for child in parents if any("locust" in part for part in cmdline(child))}
    return sorted(child for child in locust if parents[child] in locust)


def _test_start(reports: Path, deadline_s: float) -> tuple[Path, float]:
    """The run directory and its test's start (unix time), once the master has written timeline.json."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for timeline in reports.glob("*/timeline.json"):
            with contextlib.suppress(ValueError, KeyError):
                return timeline.parent, float(json.loads(timeline.read_text())["test_start_unix"])
        time.sleep(0.2)
    pytest.fail("the sweep's test never started")


@pytest.mark.long  # a distributed sweep of 2 planned steps and 1 refinement step: a minute of real load
def test_workers_frozen_or_killed_during_a_refinement_step_are_said_and_counted(tmp_path: Path) -> None:
    """Issue 22: the master picks each refinement step during the run and sends it to its workers. One worker
    frozen (SIGSTOP) from the last planned step's end until after the refinement step has begun misses its start
    (counted lost meanwhile, it is sent the step again when it reports): it is said, in the manifest's late
    workers and the report. The other, killed during the refinement step, is counted lost on its part as the
    refinement step left it (its refinement arrivals included), so every arrival stays accounted for."""
    capacity, scale = _pupils_scale(PUPILS)
    low, high = STEP_2 * capacity, STEP_2 * capacity * STEP_RATIO
    settings = SweepSettings(
        steps=2, low=low, high=high, measure_s=4.0, settle_sessions=1.0, refine_within=0.01, refine_steps=1
    )
    request = RunRequest(
        scenario_path=PUPILS, target=None, scale=scale, speed=SPEED, processes=2, reports_dir=tmp_path, sweep=settings
    )
    replay = sweep_replay(load_scenario(PUPILS), settings, scale=scale, speed=SPEED)
    planned_end_s = replay.step_bounds(1)[2]
    outcome: list[RunOutcome] = []
    runner = threading.Thread(target=lambda: outcome.append(run(request)), daemon=True)
    runner.start()
    run_dir, started = _test_start(tmp_path, deadline_s=120)
    killed, frozen = _locust_workers(os.getpid())
    # From just before the planned steps end until well after the refinement step's start (chosen JUDGE_AFTER_S
    # after they end, starting REFINE_LEAD_S later), a few missed heartbeats more: the frozen stretch is the test.
    time.sleep(max(0.0, started + planned_end_s - 1 - time.time()))
    os.kill(frozen, signal.SIGSTOP)
    try:
        time.sleep(JUDGE_AFTER_S + REFINE_LEAD_S + 6)
    finally:
        os.kill(frozen, signal.SIGCONT)
    os.kill(killed, signal.SIGKILL)  # within the refinement step (it lasts replay.step_s, 9 s here)
    killed_at_s = time.time() - started
    runner.join(timeout=240)
    assert outcome, "the sweep ended"
    steps = _steps(outcome[0])
    assert list(steps["phase"]) == [StepPhase.PLANNED, StepPhase.PLANNED, StepPhase.REFINEMENT], steps
    assert steps.iloc[2]["start_s"] < killed_at_s < steps.iloc[2]["end_s"], "killed during the refinement step"
    manifest = read_manifest(run_dir)
    notes = [worker.note for worker in manifest.late_workers]
    assert any("refinement step 3" in note and "after its start" in note for note in notes), notes
    (lost,) = manifest.lost_workers
    index = int(str(lost.part).split("/")[0]) - 1
    planned = replay.schedule_arrays(load_scenario(PUPILS).run.seed).round_robin(2, index)
    assert lost.arrivals is not None and lost.arrivals > len(planned), "its refinement arrivals count too"
    sessions = pd.read_csv(run_dir / SESSIONS_CSV)
    counted = {name: int(sessions[name].sum()) for name in ("scheduled", "started", "dropped", "lost")}
    assert counted["scheduled"] == counted["started"] + counted["dropped"] + counted["lost"], counted
    assert counted["lost"] == lost.arrivals_lost > 0, counted
    assert "refinement step 3" in (run_dir / "report.html").read_text(encoding="utf-8")
