"""The 2021 morning reproduced on the embedded platform: the default profile (undersized-2021) serves about the
published share of the people who tried and collapses like the real one (tests/calibration_replay.py)."""

from __future__ import annotations

import pytest
from calibration_replay import first_day_replay

from schoolsurge.report import load_run
from schoolsurge.report.outcome.health import health
from schoolsurge.report.outcome.served import PUBLISHED_2021_SHARE
from schoolsurge.runner import RunOutcome

SERVED_BAND = 0.10  # the served share within 10 points of 2021's 37%


pytestmark = pytest.mark.long  # a whole morning replayed: 150 s of load (make test-long)


@pytest.fixture(scope="module")
def undersized(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return first_day_replay(tmp_path_factory, "undersized-2021")


def test_the_default_profile_serves_about_the_published_share(undersized: RunOutcome) -> None:
    served = undersized.served
    assert served is not None and served.tried > 300
    assert abs(served.share - PUBLISHED_2021_SHARE) <= SERVED_BAND, served.line()


def test_the_default_profile_collapses_like_2021_and_the_retries_show(undersized: RunOutcome) -> None:
    verdicts = {v.objective.split(" (")[0]: v for v in undersized.verdicts}
    assert not verdicts["login p95"].met, "logins are mostly failing or timing out"
    data = load_run(undersized.run_dir)
    sessions = data.sessions
    people = int(sessions["started"].sum())
    assert sessions["login_retries"].sum() > 3 * people, "the reconnection bubble"
    assert sessions["abandoned"].sum() > people / 3, "people gave up"
    platform = health(data)
    assert not platform.generator_bound and not platform.machine_bound, platform.lines()
    assert platform.shed_by_profile > 0, "the profile's national capacity is what refused them"
