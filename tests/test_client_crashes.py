"""A client that crashes is a failure, never a green run: a step that raises in the client (the default client
against a dashboard without `role`: KeyError) is a failed step of that person, in the error ratio and the
funnel, named at the top of the report and on the console; when it happens while logging in, the person was not
served; a run in which more than 10% of the journeys crash is invalid, the client is broken (exit 5). Real runs
of smoke's first half hour on the embedded platform, through the deliberately broken clients of
clients_under_test.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import HALF_HOUR, run_with_test_client

from schoolsurge.cli import EXIT_CLIENT_BROKEN
from schoolsurge.report import load_run
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.run.funnel import login_funnel
from schoolsurge.rundir import CLIENT_STEPS, MANIFEST, REPORT, SESSIONS_CSV, STATS_CSV


def _broken_run(client: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    code, out, run_dir = run_with_test_client(client, tmp_path, monkeypatch, capsys)
    return code, out, run_dir, pd.read_csv(run_dir / SESSIONS_CSV).sum(numeric_only=True)


def test_a_client_crashing_on_the_dashboard_fails_those_steps_and_makes_the_run_invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, run_dir, people = _broken_run("RolelessDashboardClient", tmp_path, monkeypatch, capsys)
    assert code == EXIT_CLIENT_BROKEN, out
    # Everyone who got in crashed on their first dashboard: one crash each, their journey ended there.
    crashed = int(people["client_errors"])
    assert crashed == people["logins_succeeded"] > 5
    assert people["client_errors_login"] == 0
    assert f"The client crashed in {crashed} of {int(people['started'])} people's journeys" in out
    assert "KeyError 'role' in dashboard at reference.py:" in out
    assert "INVALID RUN (the client is broken: it crashed in " in out and "it measured a bug of the client" in out
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["valid"] is False and manifest["invalid_reason"].startswith("the client is broken: ")
    # Each crash is a failed step in the error ratio: Locust's CRASH entry, counted with people's requests.
    stats = pd.read_csv(run_dir / STATS_CSV)
    crash_rows = stats[(stats["Type"] == "CRASH") & (stats["Name"] == "dashboard")]
    assert int(crash_rows["Failure Count"].sum()) == int(crash_rows["Request Count"].sum()) == crashed
    data = load_run(run_dir)
    assert RunData.is_request_row(stats)[crash_rows.index].all()
    requests, failures = data.requests_in(None)
    assert failures >= crashed and requests > crashed
    assert f"SLO error ratio ({'-'.join(HALF_HOUR)}): 0.00%" not in out
    # Named at the top of the report (before its contents), and in the client steps section with an account.
    report = (run_dir / REPORT).read_text()
    top = report[: report.index("<nav>")]
    assert "INVALID RUN (the client is broken" in top and f"The client crashed in {crashed} of " in top
    assert '<h2 id="client_steps">Client steps</h2>' in report
    record = json.loads((run_dir / CLIENT_STEPS).read_text())
    (crash,) = record["crashes"]
    assert crash["step"] == "dashboard" and crash["error"] == "KeyError 'role'" and crash["count"] == crashed
    assert crash["username"] and crash["username"] in report
    # The funnel: nobody who logged in got a first page the client could read.
    first_page = next(stage for stage in login_funnel(data) if stage.name.startswith("first page"))
    assert first_page.count == 0
    assert ("the client crashed reading it: KeyError 'role'", crashed) in first_page.why


def test_a_client_crashing_while_logging_in_serves_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, run_dir, people = _broken_run("LoginCrashClient", tmp_path, monkeypatch, capsys)
    assert code == EXIT_CLIENT_BROKEN, out
    assert people["logins_succeeded"] == 0
    # Everyone who did not give up on the platform's refusals (the smoke's login limit) crashed logging in.
    crashed = int(people["client_errors"])
    assert crashed == people["client_errors_login"] == people["started"] - people["abandoned"] > 5
    assert f"{crashed} of them while logging in (not served)" in out
    assert "Who got in: 0% (0 of" in out and "Held the peak: not judged, the run is invalid" in out
    data = load_run(run_dir)
    logged_in = next(stage for stage in login_funnel(data) if stage.name == "logged in")
    assert logged_in.count == 0
    assert any(reason.startswith("the client crashed: AttributeError") for reason, _ in logged_in.why)
