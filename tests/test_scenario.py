"""Scenario files: the library loads, and every kind of mistake gets one line naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.scenario import ScenarioError, clock_to_seconds, load_scenario, seconds_to_clock

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_library_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert {g.persona for g in scenario.groups} == {"student", "teacher", "parent"}


def test_first_day_figures_come_from_facts() -> None:
    scenario = load_scenario(SCENARIOS / "first-day-2021.yaml")
    assert scenario.pupils == 12_700_000
    teachers = next(g for g in scenario.groups if g.persona == "teacher")
    assert teachers.population == 869_300
    assert scenario.window.start == "07:00" and scenario.window.end == "10:00"


def _write_variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((SCENARIOS / "smoke.yaml").read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        (lambda d: d.update(colour="blue"), "colour", "unknown field"),
        (lambda d: d["groups"][0].update(population=-5), "groups.0.population", "greater than 0"),
        (lambda d: d["groups"][1].update(population="many"), "groups.1.population", "valid integer"),
        (lambda d: d["groups"][0].update(participation=1.5), "groups.0.participation", "less than or equal"),
        (lambda d: d["groups"][0].update(persona="robot"), "groups.0.persona", "'student', 'teacher'"),
        (lambda d: d["groups"][0]["login_time"].update(mean="8h"), "groups.0.login_time.mean", "pattern"),
        (lambda d: d["window"].update(end="07:00"), "window", "must be after start"),
        (lambda d: d["groups"].append(dict(d["groups"][0])), "groups", "repeated: teachers"),
        (lambda d: d["run"].update(scale=2), "run.scale", "less than or equal to 1"),
        (lambda d: d.pop("slo"), "slo", "Field required"),
    ],
)
def test_wrong_field_is_named_in_one_line(tmp_path: Path, change, field: str, expected: str) -> None:
    path = _write_variant(tmp_path, change)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {field}: ")
    assert expected in message
    assert "\n" not in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML at line"):
        load_scenario(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ScenarioError, match="expected a mapping"):
        load_scenario(listed)


def test_cli_exits_2_on_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_variant(tmp_path, lambda d: d["groups"][0].update(population=-1))
    assert main(["run", str(path), "--reports-dir", str(tmp_path / "reports")]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert error.startswith("schoolsurge: ") and "groups.0.population" in error
    assert not (tmp_path / "reports").exists(), "nothing is created for a scenario that does not validate"


def test_clock_round_trip() -> None:
    assert clock_to_seconds("08:30") == 30_600
    assert seconds_to_clock(30_600) == "08:30"
    with pytest.raises(ValueError):
        clock_to_seconds("25:00")
