"""`schoolsurge plan`: national, run and fleet figures for every scenario of the library, as text, JSON and PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.models import fleet as fleet_module
from schoolsurge.models.population import national_curves
from schoolsurge.models.schedule import build_schedule
from schoolsurge.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REQUIRED = {
    "national": {"total_people", "peak_arrivals_per_s", "peak_at", "peak_concurrent_sessions", "virtual_classes"},
    "run": {"people", "duration_s", "peak_arrivals_per_s", "peak_concurrent_sessions", "peak_requests_per_s"},
    "fleet": {"workers", "memory_mb", "workers_full_scale", "memory_full_scale_mb"},
}


def plan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["plan", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_plan_works_on_every_library_scenario(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "chart.png"
    plan = plan_json(capsys, str(path), "--chart", str(chart))
    for section, keys in REQUIRED.items():
        assert keys <= set(plan[section]), section
    scenario = load_scenario(path)
    run = scenario.run
    assert plan["national"]["total_people"] == round(sum(g.population * g.participation for g in scenario.groups))
    assert plan["run"]["people"] == len(build_schedule(scenario, run.scale, run.speed, run.seed))
    assert plan["run"]["duration_s"] == pytest.approx(scenario.window.duration_s / run.speed)
    assert plan["run"]["load_fraction"] == pytest.approx(run.scale * run.speed)
    assert plan["national"]["peak_concurrent_sessions"] == pytest.approx(
        national_curves(scenario).total_concurrent().max(), abs=1
    )
    assert scenario.window.start <= plan["national"]["peak_at"] < scenario.window.end
    assert plan["fleet"]["workers_full_scale"] >= plan["fleet"]["workers"] >= 1
    assert plan["chart"] == str(chart) and chart.read_bytes().startswith(PNG_MAGIC)


def test_first_day_plan_peaks_in_the_crush(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_json(capsys, str(SCENARIOS / "first-day-2021.yaml"), "--chart", str(tmp_path / "c.png"))
    national, run, fleet = plan["national"], plan["run"], plan["fleet"]
    speed = load_scenario(SCENARIOS / "first-day-2021.yaml").run.speed  # the scenario's own (scale 1e-4)
    assert "08:00" <= national["peak_at"] < "10:00"
    assert national["virtual_classes"] == pytest.approx(150_000, rel=0.001)
    # Scale divides concurrency; scale x speed (the load fraction) divides rates.
    assert run["peak_concurrent_sessions"] == pytest.approx(national["peak_concurrent_sessions"] * 1e-4, rel=0.01)
    assert run["peak_arrivals_per_s"] == pytest.approx(national["peak_arrivals_per_s"] * 1e-4 * speed, rel=0.01)
    assert run["peak_requests_per_s"] == pytest.approx(national["peak_requests_per_s"] * 1e-4 * speed, rel=0.01)
    assert run["platform_pupils"] == 1_270 and run["duration_s"] == pytest.approx(3 * 3600 / speed, abs=0.1)
    # Full scale: the national peak of requests at the fleet figures (`make bench`'s, else the documented
    # defaults); 1.57M sessions at their KB each.
    assert 50_000 <= national["peak_requests_per_s"] <= 60_000
    per_process = fleet["requests_per_s_per_process"] * fleet["cpu_target"]
    assert fleet["workers_full_scale"] == math.ceil(national["peak_requests_per_s"] / per_process)
    assert fleet["memory_full_scale_mb"] == pytest.approx(1_568_041 * fleet["kb_per_session"] / 1000, rel=0.01)


def test_full_scale_in_real_time_is_the_national_morning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SCENARIOS / "normal-day.yaml")
    plan = plan_json(capsys, path, "--scale", "1", "--speed", "1", "--chart", str(tmp_path / "c.png"))
    national, run, fleet = plan["national"], plan["run"], plan["fleet"]
    assert run["people"] == pytest.approx(national["total_people"], abs=4)
    assert run["peak_concurrent_sessions"] == pytest.approx(national["peak_concurrent_sessions"], abs=1)
    assert run["peak_requests_per_s"] == pytest.approx(national["peak_requests_per_s"], abs=1)
    assert fleet["workers"] == fleet["workers_full_scale"]


def test_fleet_figures_can_be_overridden(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(SCENARIOS / "first-day-2021.yaml"), "--chart", str(tmp_path / "c.png")]
    default = plan_json(capsys, *base)["fleet"]
    overrides = ["--rps-per-process", "1000", "--cpu-target", "1", "--kb-per-session", "54"]
    slower = plan_json(capsys, *base, *overrides)["fleet"]
    assert slower["requests_per_s_per_process"] == 1000 and slower["cpu_target"] == 1
    per_process = default["requests_per_s_per_process"] * default["cpu_target"]
    # default is ceil(need) for a need in (default - 1, default]: the slower fleet is ceil(need x the slowdown).
    slowdown = per_process / 1000
    assert (default["workers_full_scale"] - 1) * slowdown <= slower["workers_full_scale"]
    assert slower["workers_full_scale"] <= default["workers_full_scale"] * slowdown + 1
    assert slower["memory_full_scale_mb"] == pytest.approx(
        54 / default["kb_per_session"] * default["memory_full_scale_mb"], rel=0.001
    )


def _constants(path: Path, per_process: float, kb: float) -> Path:
    measured = {"by": "make bench (benchmarks/bench_engine.py)", "machine": "Test CPU, 3 cores", "date": "2031-04-06"}
    path.write_text(json.dumps({"requests_per_s_per_process": per_process, "kb_per_session": kb, "measured": measured}))
    return path


def test_plan_reads_the_fleet_constants_file_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(fleet_module.CONSTANTS_ENV, str(_constants(tmp_path / "fleet.json", 2_000, 40)))
    base = [str(SCENARIOS / "first-day-2021.yaml"), "--chart", str(tmp_path / "c.png")]
    plan = plan_json(capsys, *base)
    fleet = plan["fleet"]
    assert fleet["requests_per_s_per_process"] == 2000 and fleet["kb_per_session"] == 40
    assert fleet["cpu_target"] == 0.75, "a file without cpu_target keeps the default margin"
    said = "fleet figures measured by make bench (benchmarks/bench_engine.py) on Test CPU, 3 cores 2031-04-06"
    assert fleet["source"] == said
    assert fleet["workers_full_scale"] == math.ceil(plan["national"]["peak_requests_per_s"] / (2000 * 0.75))
    assert fleet["memory_full_scale_mb"] == pytest.approx(
        plan["national"]["peak_concurrent_sessions"] * 40 / 1000, abs=1
    )
    assert main(["plan", *base]) == 0
    out = capsys.readouterr().out
    assert "Fleet (2,000 requests/s per process on a whole core, planned at 75%; 40 KB per open session)" in out
    assert f"figures               {said}" in out
    # An option still overrides the file's figure.
    assert plan_json(capsys, *base, "--rps-per-process", "1000")["fleet"]["requests_per_s_per_process"] == 1000


def test_plan_without_a_constants_file_says_it_uses_the_documented_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(fleet_module.CONSTANTS_ENV, raising=False)
    monkeypatch.setattr(fleet_module, "CONSTANTS_PATH", tmp_path / "absent.json")
    fleet = plan_json(capsys, str(SCENARIOS / "smoke.yaml"), "--chart", str(tmp_path / "c.png"))["fleet"]
    assert fleet["requests_per_s_per_process"] == fleet_module.DEFAULT_REQUESTS_PER_S_PER_PROCESS
    assert fleet["kb_per_session"] == fleet_module.DEFAULT_KB_PER_SESSION
    assert fleet["source"].startswith("documented defaults measured on ")


def test_the_committed_constants_are_the_documented_defaults() -> None:
    """benchmarks/fleet_constants.json (make bench) and the defaults beside FleetFigures say the same."""
    constants = fleet_module.read_constants(fleet_module.CONSTANTS_PATH)
    assert constants is not None
    assert constants["requests_per_s_per_process"] == fleet_module.DEFAULT_REQUESTS_PER_S_PER_PROCESS
    assert constants["kb_per_session"] == fleet_module.DEFAULT_KB_PER_SESSION


def test_a_missing_or_broken_constants_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["plan", str(SCENARIOS / "smoke.yaml"), "--chart", str(tmp_path / "c.png")]
    monkeypatch.setenv(fleet_module.CONSTANTS_ENV, str(tmp_path / "absent.json"))
    assert main(base) == EXIT_USAGE
    assert f"fleet constants file {tmp_path / 'absent.json'} not found" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"requests_per_s_per_process": 2000}')
    monkeypatch.setenv(fleet_module.CONSTANTS_ENV, str(broken))
    assert main(base) == EXIT_USAGE
    assert f"fleet constants file {broken} lacks a figure" in capsys.readouterr().err


def test_bot_flood_is_offered_at_the_load_fraction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = plan_json(capsys, str(SCENARIOS / "cyberattack-2021.yaml"), "--chart", str(tmp_path / "c.png"))
    (flood,) = plan["incidents"]
    run = load_scenario(SCENARIOS / "cyberattack-2021.yaml").run
    assert flood["run_rate_per_s"] == pytest.approx(flood["national_rate_per_s"] * run.scale * run.speed)
    assert plan["national"]["bot_attempts"] == flood["national_rate_per_s"] * 90 * 60


def test_text_output_and_default_chart_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["plan", str(SCENARIOS / "datacenter-loss.yaml"), "--scale", "2e-4", "--speed", "20"]) == 0
    out = capsys.readouterr().out
    for text in (
        "National",
        "peak logins",
        "in the minute 08:16",
        "virtual classes",
        "40% from 08:15, until 09:30",
        "Run (scale 0.0002, speed 20x, load fraction 0.004)",
        "run length            540 s",
        "Fleet",
    ):
        assert text in out, text
    chart = Path("reports/plan-datacenter-loss.png")
    assert f"Chart: {chart}" in out and chart.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--scale", "2"], "--scale: must be in (0, 1]"),
        (["--speed", "0"], "--speed: must be above 0"),
        (["--speed", "nan"], "finite"),
        (["--cpu-target", "0"], "CPU target must be in (0, 1]"),
        (["--rps-per-process", "-3"], "requests per second per process must be positive"),
    ],
)
def test_bad_options_get_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    chart = tmp_path / "c.png"
    assert main(["plan", str(SCENARIOS / "smoke.yaml"), "--chart", str(chart), *options]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert error.startswith("schoolsurge: ") and expected in error and "\n" not in error
    assert not chart.exists()


def test_unwritable_chart_path_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["plan", str(SCENARIOS / "smoke.yaml"), "--chart", str(blocker / "c.png")]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert f"cannot write the chart {blocker / 'c.png'}" in error and "\n" not in error
