"""End to end: embedded platform on an ephemeral loopback port, the three personas through real Locust,
a run directory with manifest, CSV files and a self-contained report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.runner import RunOutcome

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"


def _successes(stats: pd.DataFrame, name: str) -> int:
    row = stats[stats["Name"] == name]
    assert len(row) == 1, f"no statistics row for {name!r}"
    return int(row["Request Count"].iloc[0] - row["Failure Count"].iloc[0])


def test_personas_log_in_and_hold_a_virtual_class(smoke_run: RunOutcome) -> None:
    stats = pd.read_csv(smoke_run.run_dir / "locust_stats.csv")
    assert _successes(stats, "login") > 20
    assert _successes(stats, "virtual class: create") > 0
    assert _successes(stats, "virtual class: join") > 0
    assert _successes(stats, "virtual class: heartbeat") > 0
    for step in ("dashboard", "timetable", "homework"):
        assert _successes(stats, step) > 0
    names = set(stats["Name"])
    assert not any(re.search(r"\d{2,}", name) for name in names if name != "Aggregated"), names


def test_run_directory_holds_manifest_csvs_and_report(smoke_run: RunOutcome) -> None:
    run_dir = smoke_run.run_dir
    assert re.fullmatch(r"\d{8}T\d{6}Z-smoke", run_dir.name)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["scenario"] == "smoke" and manifest["speed"] == 240 and manifest["scale"] == 2e-5
    assert manifest["target"].startswith("http://127.0.0.1:") and manifest["embedded"] is True
    assert manifest["seed"] == 2021 and manifest["versions"]["locust"]
    assert manifest["started_unix"] < manifest["ended_unix"]
    for name in (
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "scenario.yaml",
        "sessions.csv",
        "time_to_login.jsonl",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    history = pd.read_csv(run_dir / "locust_stats_history.csv")
    assert history["Timestamp"].nunique() > 5, "full history has one row per second"


def test_report_is_self_contained(smoke_run: RunOutcome) -> None:
    assert smoke_run.report == smoke_run.run_dir / "report.html"
    html = smoke_run.report.read_text()
    # The engine's charts, inline SVG or, when all zero, a line of text (tests/test_report_charts.py
    # checks each one), and the platform side's five, from its own metrics (tests/test_monitoring.py checks them).
    # Each chart drawn, or one line of text when its figures are 0 throughout.
    platform = html.count('<figure id="chart-platform-')
    platform_collapsed = html.count('<p class="collapsed" id="chart-platform-')
    collapsed = html.count('<p class="collapsed" id="chart-') - platform_collapsed
    # (+ time to log in against the load offered, when some bins hold enough logins for a percentile), the
    # national demand against capacity of the capacity section included
    assert html.count('<svg class="chart"') - platform + collapsed - html.count('id="chart-login-vs-offered"') == 14
    assert platform + platform_collapsed == 5
    assert "Time to log in from the intended arrival" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no resource is fetched from a network"
    assert "login p95" in html and "error ratio" in html
    assert [v.objective.split(" (")[0] for v in smoke_run.verdicts] == ["login p95", "error ratio"]


def test_report_command_rebuilds_and_names_a_corrupt_file(
    smoke_run: RunOutcome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").exists()
    (copy / "locust_stats_history.csv").write_text("Timestamp,Users\n1,2,3,4\n\x00garbage")
    assert main(["report", str(copy)]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert "locust_stats_history.csv" in error and "\n" not in error


def test_refuses_a_non_loopback_target_before_sending_anything(tmp_path: Path) -> None:
    code = main(["run", str(SMOKE), "--target", "http://192.0.2.10:80", "--reports-dir", str(tmp_path)])
    assert code == EXIT_USAGE
    assert not any(tmp_path.iterdir())


def _corrupt_copy(smoke_run: RunOutcome, tmp_path: Path) -> Path:
    copy = tmp_path / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, copy)
    (copy / "report.html").unlink()
    return copy


def test_report_notes_what_it_cannot_read_instead_of_failing(smoke_run: RunOutcome, tmp_path: Path) -> None:
    copy = _corrupt_copy(smoke_run, tmp_path)
    (copy / "locust_failures.csv").write_text("")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "scale": "a tenth", "speed": None, "versions": "?"}))
    timeline = json.loads((copy / "timeline.json").read_text())
    (copy / "timeline.json").write_text(json.dumps({**timeline, "test_start_unix": "yesterday", "speed": "fast"}))
    assert main(["report", str(copy)]) == 0
    html = (copy / "report.html").read_text()
    assert "locust_failures.csv is empty" in html
    assert "test_start_unix is not a number" in html
    assert "speed unknown" in html
