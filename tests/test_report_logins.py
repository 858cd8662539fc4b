"""The run report's logins chart on a real run of the undersized 2021 platform (the session's undersized smoke
run, conftest's `smoke_pair`): the credential posts offered against those admitted and the profile's login-rate
limit, all from the platform's own counters."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SmokeRuns, assert_measured_the_platform

from schoolsurge.report import build_report, load_run
from schoolsurge.report.platform.charts import logins
from schoolsurge.report.platform.series import read_series
from schoolsurge.report.series.axis import time_axis


@pytest.fixture
def undersized(smoke_pair: SmokeRuns, tmp_path: Path) -> Path:
    """A copy of the shared undersized smoke run's directory, which measured the platform (its login-rate limit
    binds): the report is built again into it."""
    assert_measured_the_platform(smoke_pair.undersized)
    return Path(shutil.copytree(smoke_pair.undersized, tmp_path / smoke_pair.undersized.name))


def test_offered_logins_pass_the_limit_and_the_admitted_stay_under_it(undersized: Path) -> None:
    data = load_run(undersized)
    series = read_series(data.run_dir, data.test_start_unix)
    assert series is not None
    rates = series.login_rates()
    assert rates is not None and len(rates) >= 3
    totals = series.totals()
    seconds = rates["end_s"] - rates["start_s"]
    # offered = admitted + shed for the login rate (503) + throttled (429), over the run
    offered = float((rates["offered"] * seconds).sum())
    expected = totals["logins_checked"] + totals["shed_login_rate"] + totals["logins_throttled"]
    assert offered == pytest.approx(expected, rel=1e-6)
    assert float((rates["admitted"] * seconds).sum()) == pytest.approx(totals["logins_checked"], rel=1e-6)
    # the limit is the profile's at the run's level, and binds: people offered more than it admits
    limit = rates["limit"].to_numpy(dtype=float)
    assert np.isfinite(limit).all() and limit.min() > 0
    assert (rates["offered"] > rates["limit"]).any(), rates
    assert totals["shed_login_rate"] > 0
    chart = logins(series, time_axis(data), None)
    assert chart is not None and chart.svg and "login-rate limit" in chart.svg
    html = build_report(undersized).read_text(encoding="utf-8")
    assert '<figure id="chart-platform-logins">' in html
