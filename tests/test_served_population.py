"""Who got in, by population. 2021's: the teachers and pupils who came for a virtual class (sessions.csv
`came_for_virtual_class`, counted as they start) and, of them, those who reached one (teachers who opened theirs,
pupils let into one), beside 6 April 2021's 37% of 1,352,000. Each scenario group's (groups.csv): the served share
per group, which adds up to the run's. On the shared smoke run, and on copies of it made to look like an earlier
version's run (neither recorded) or a 2021 scenario's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from schoolsurge.cli import main
from schoolsurge.report import load_run
from schoolsurge.report.charts import people
from schoolsurge.report.charts.sections import context
from schoolsurge.report.outcome.answer import read_answer
from schoolsurge.report.outcome.served import PUBLISHED_2021_TRIED, served_by_group, served_share
from schoolsurge.rundir import GROUP_COUNTERS, GROUPS_CSV, SESSIONS_CSV, VIRTUAL_CLASS_REACHED, Counter
from schoolsurge.runner import RunOutcome

CAME = Counter.CAME_FOR_VIRTUAL_CLASS


def _reached(sessions: pd.DataFrame) -> pd.Series:
    return sessions[list(VIRTUAL_CLASS_REACHED)].sum(axis=1)


def test_who_came_for_a_virtual_class_and_who_reached_one_add_up(smoke_run: RunOutcome) -> None:
    sessions = load_run(smoke_run.run_dir).sessions
    assert sessions is not None
    # In every cohort second: those who reached one came for one, and those who came for one started.
    assert (_reached(sessions) <= sessions[CAME]).all()
    assert (sessions[CAME] <= sessions[Counter.STARTED]).all()
    came, reached = int(sessions[CAME].sum()), int(_reached(sessions).sum())
    assert 0 < reached <= came < int(sessions[Counter.STARTED].sum()), "the smoke's parents come for no class"


def test_the_answer_gives_the_share_of_those_who_came_for_a_virtual_class(smoke_run: RunOutcome) -> None:
    data = load_run(smoke_run.run_dir)
    share = served_share(data)
    answer = read_answer(smoke_run.run_dir)
    assert share is not None and answer is not None and answer.served is not None
    served = answer.served
    assert served.came_for_virtual_class == share.came_for_virtual_class
    assert served.reached_virtual_class == share.reached_virtual_class
    assert 0 < served.came_for_virtual_class <= served.tried
    assert served.virtual_class_share == served.reached_virtual_class / served.came_for_virtual_class
    line = next(line for line in answer.lines() if line.startswith("Who got in:"))
    assert (
        f"{served.virtual_class_share:.0%} of the {served.came_for_virtual_class:,} teachers and pupils who came for "
        f"a virtual class {served.virtual_class_window} reached one ({served.reached_virtual_class:,}"
    ) in line, line
    assert "6 April 2021" not in line, "smoke does not stand for 2021"
    assert share.virtual_class_line() in smoke_run.report.read_text().replace("&#39;", "'")


def test_a_2021_scenario_sets_the_share_beside_2021s_of_the_same_population(
    smoke_run: RunOutcome, tmp_path: Path
) -> None:
    copy = _copy(smoke_run, tmp_path)
    scenario = copy / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("name: smoke", "name: first-day-2021", 1))
    assert main(["report", str(copy)]) == 0
    answer = read_answer(copy)
    assert answer is not None and answer.served is not None and answer.served.reference is not None
    reference = answer.served.reference
    assert reference.startswith(f"{answer.served.virtual_class_share:.0%} of the ")
    assert reference.endswith(f"; 6 April 2021: 37% of {PUBLISHED_2021_TRIED:,} (500,000 reached one)")
    assert "another population" not in reference


def test_2021s_population_is_counted_over_the_whole_morning_not_the_slo_window(
    smoke_run: RunOutcome, tmp_path: Path
) -> None:
    """2021's figure counts the day's teachers and pupils, and teachers come before their pupils, before the SLO
    window: the people who came for a virtual class are counted over the whole replayed morning."""
    copy = _copy(smoke_run, tmp_path)
    scenario = copy / "scenario.yaml"
    scenario.write_text(scenario.read_text().replace("slo:\n", 'slo:\n  window: {start: "08:00", end: "08:30"}\n', 1))
    assert main(["report", str(copy)]) == 0
    data = load_run(copy)
    sessions, seconds = data.sessions, data.slo_seconds()
    assert sessions is not None and seconds is not None and seconds[0] > 0
    in_window = sessions[(sessions["second"] >= seconds[0]) & (sessions["second"] < seconds[1])]
    answer = read_answer(copy)
    assert answer is not None and answer.served is not None
    served = answer.served
    assert served.window == "08:00-08:30" and served.virtual_class_window == "07:30-08:30"
    assert served.came_for_virtual_class == int(sessions[CAME].sum()) > int(in_window[CAME].sum())
    assert served.reached_virtual_class == int(_reached(sessions).sum())
    assert served.tried == int(in_window[Counter.STARTED].sum()), "the served share stays the SLO window's"
    assert served.reference is not None and "who came for a virtual class 07:30-08:30 reached one" in served.reference


def test_a_run_of_an_earlier_version_says_who_came_is_not_recorded(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _copy(smoke_run, tmp_path)
    sessions = pd.read_csv(copy / SESSIONS_CSV)
    sessions.drop(columns=[CAME.value]).to_csv(copy / SESSIONS_CSV, index=False)
    (copy / GROUPS_CSV).unlink()
    assert main(["report", str(copy)]) == 0
    answer = read_answer(copy)
    assert answer is not None and answer.served is not None
    assert answer.served.came_for_virtual_class is None and answer.served.virtual_class_share is None
    assert answer.served.reference is not None and "did not record who came" in answer.served.reference
    html = (copy / "report.html").read_text()
    assert "who came for a virtual class: not recorded by this run" in html
    summary = served_share(load_run(copy, summary=True))  # the index reads the window's totals only
    assert summary is not None and summary.came_for_virtual_class is None and summary.tried > 0
    assert served_by_group(load_run(copy)) is None and 'id="chart-served-per-group"' not in html


def test_groups_csv_splits_the_sessions_counts_by_group(smoke_run: RunOutcome) -> None:
    data = load_run(smoke_run.run_dir)
    assert data.groups is not None and data.sessions is not None
    for counter in GROUP_COUNTERS:
        assert int(data.groups[counter].sum()) == int(data.sessions[counter].sum()), counter
    by_group = data.groups.groupby("group")[[CAME.value, Counter.STARTED.value]].sum()
    # Smoke sends every teacher and every pupil to a virtual class (virtual_class: 1), and no parent.
    for group in ("teachers", "secondary-pupils"):
        assert by_group.at[group, CAME] == by_group.at[group, Counter.STARTED] > 0, group
    assert by_group.at["primary-families", CAME] == 0 < by_group.at["primary-families", Counter.STARTED]


def test_the_served_share_per_group_adds_up_to_the_runs_and_is_drawn(smoke_run: RunOutcome) -> None:
    data = load_run(smoke_run.run_dir)
    groups, whole = served_by_group(data), served_share(data)
    assert groups is not None and whole is not None
    assert [group.group for group in groups] == ["teachers", "secondary-pupils", "primary-families"]
    assert sum(group.tried for group in groups) == whole.tried
    assert sum(group.served for group in groups) == whole.served
    assert sum(group.gave_up for group in groups) == whole.gave_up
    chart = people.served_per_group(context(data))
    assert chart is not None and not chart.collapsed
    for group in groups:
        assert f"{group.group}: {group.share:.0%} ({group.served:,} of {group.tried:,})" in chart.svg, group
    assert 'id="chart-served-per-group"' in smoke_run.report.read_text()


def _copy(smoke_run: RunOutcome, tmp_path: Path) -> Path:
    copy = tmp_path / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, copy)
    (copy / "report.html").unlink()
    return copy
