"""What the client does not do is said, never blamed on the platform: journey steps a client does not perform
(StepNotSupported) are listed with the times people would have taken them and left out of the run against plan;
failed logins are shown by class with one example account (its username, never its password), in the report and
its funnel. Real runs of smoke's first half hour (every teacher opens a virtual class, every pupil joins one) on
the embedded platform, through the clients of clients_under_test.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_with_test_client

from schoolsurge.rundir import CLIENT_STEPS, REPORT, SESSIONS_CSV

# What is read is counted as people go: the last sessions need not end (those still going are counted unfinished).
DRAIN_LIMIT = ("--drain-limit", "2")


def _run(
    client: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, Path]:
    return run_with_test_client(client, tmp_path, monkeypatch, capsys, *DRAIN_LIMIT)


def _section(report: str, anchor: str) -> str:
    start = report.index(f'<h2 id="{anchor}">')
    return report[start : report.index("<h2", start + 1)]


def test_steps_the_client_does_not_perform_are_listed_and_left_out_of_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, run_dir = _run("NoVirtualClassClient", tmp_path, monkeypatch, capsys)
    assert code == 0, out
    skipped = json.loads((run_dir / CLIENT_STEPS).read_text())["not_supported"]
    assert "schedule_virtual_class" in skipped  # pupils then find no class to join: they do not try
    people = pd.read_csv(run_dir / SESSIONS_CSV).sum(numeric_only=True)
    assert sum(skipped.values()) == people["steps_not_supported"] > 0
    report = (run_dir / REPORT).read_text()
    steps = _section(report, "client_steps")
    assert "Journey steps this client does not perform" in steps
    for step, times in skipped.items():
        assert f'<tr><td>{step}</td><td class="num">{times:,}</td></tr>' in steps
    plan = _section(report, "plan")
    assert "people in a session, peak" in plan
    assert "<td>virtual classes opened</td>" not in plan and "<td>people in a virtual class" not in plan
    assert "<td>requests per second" not in plan
    assert "Left out: requests per second, people in a virtual class, virtual classes opened." in plan
    assert "schedule_virtual_class" in plan


def test_failed_logins_are_shown_by_class_with_one_account_never_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, run_dir = _run("WrongPasswordClient", tmp_path, monkeypatch, capsys)
    refused = json.loads((run_dir / CLIENT_STEPS).read_text())["login_failures"]["credentials refused"]
    username = refused["username"]
    assert refused["count"] > 0 and int(username[-1]) % 3 == 0
    people = pd.read_csv(run_dir / SESSIONS_CSV).sum(numeric_only=True)
    assert refused["count"] <= people["logins_failed"]
    report = (run_dir / REPORT).read_text()
    assert f'<tr><td>credentials refused</td><td class="num">{refused["count"]:,}</td><td>{username}</td></tr>' in (
        _section(report, "client_steps")
    )
    funnel = _section(report, "funnel")
    assert f"failed login attempts: credentials refused (e.g. {username}) ({refused['count']:,})" in funnel
    assert "-stale" not in report and "password" not in _section(report, "client_steps")
