"""Scenario files: the library loads, and every kind of mistake gets one line naming file, field and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.scenario import ScenarioError, clock_to_seconds, load_scenario, seconds_to_clock

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
LIBRARY = ("first-day-2021", "everyone", "normal-day", "rentree", "cyberattack-2021", "datacenter-loss", "smoke")


def test_the_library_is_complete() -> None:
    assert {p.stem for p in SCENARIOS.glob("*.yaml")} == set(LIBRARY)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_library_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert {g.persona for g in scenario.groups} == {"student", "teacher", "parent"}
    assert all("docs/facts.md" in g.source for g in scenario.groups)


def test_first_day_figures_come_from_facts() -> None:
    scenario = load_scenario(SCENARIOS / "first-day-2021.yaml")
    assert scenario.pupils == 12_700_000
    assert scenario.group("teachers").population == 869_300
    # collège + lycée GT + lycée pro, scaled from the 12.25M level split to the 12.7M of the press.
    assert scenario.group("secondary-pupils").population == round((3_429_000 + 1_612_000 + 645_000) * 12.7 / 12.25, -2)
    assert scenario.window.start == "07:00" and scenario.window.end == "10:00"
    assert (scenario.slo_window.start, scenario.slo_window.end) == ("08:00", "10:00")
    assert scenario.platform.profile == "undersized-2021"
    assert scenario.incidents == []


@pytest.mark.parametrize(("name", "kind"), [("cyberattack-2021", "bot-flood"), ("datacenter-loss", "capacity-loss")])
def test_incident_scenarios_are_the_first_day_plus_their_incident(name: str, kind: str) -> None:
    first_day = load_scenario(SCENARIOS / "first-day-2021.yaml")
    variant = load_scenario(SCENARIOS / f"{name}.yaml")
    assert variant.groups == first_day.groups, "the calibrated groups were copied unchanged"
    assert (variant.window, variant.slo, variant.run) == (first_day.window, first_day.slo, first_day.run)
    assert [i.kind for i in variant.incidents] == [kind]


def test_datacenter_loss_takes_40_percent_in_the_peak() -> None:
    (loss,) = load_scenario(SCENARIOS / "datacenter-loss.yaml").capacity_losses
    assert loss.fraction == 0.4
    assert "08:00" <= loss.at < loss.restored_at <= "10:00"


def _write_variant(tmp_path: Path, change, base: str = "first-day-2021.yaml") -> Path:
    data = yaml.safe_load((SCENARIOS / base).read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _flood(**fields) -> dict:
    return {"kind": "bot-flood", "start": "08:00", "end": "09:00", "national_rate_per_s": 1000, **fields}


def _loss(**fields) -> dict:
    return {"kind": "capacity-loss", "at": "08:15", "restored_at": "09:30", "fraction": 0.4, **fields}


# The rules first (unknown key, wrong type, negative rate, no mass inside the window, incident outside
# it), then the other checks a scenario file gets.
@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        pytest.param(lambda d: d.update(colour="blue"), "colour", "unknown field", id="unknown-key"),
        pytest.param(
            lambda d: d["groups"][2]["session"].update(mean_minuts=12),
            "groups.2.session.mean_minuts",
            "unknown field",
            id="unknown-nested-key",
        ),
        pytest.param(
            lambda d: d["groups"][2].update(population="many"), "groups.2.population", "valid integer", id="wrong-type"
        ),
        pytest.param(
            lambda d: d["incidents"].append(_flood(national_rate_per_s=-50)),
            "incidents.0.national_rate_per_s",
            "greater than 0",
            id="negative-rate",
        ),
        pytest.param(
            lambda d: d["groups"][3].update(login_time={"distribution": "normal", "mean": "14:00", "sd_minutes": 20}),
            "groups.3.login_time",
            "only 0.0% of the logins fall inside the window 07:00-10:00",
            id="no-mass-in-window",
        ),
        pytest.param(
            lambda d: d["incidents"].append(_flood(start="09:30", end="11:00")),
            "incidents.0.end",
            "11:00 is outside the window 07:00-10:00",
            id="incident-outside-window",
        ),
        pytest.param(
            lambda d: d["incidents"].append(_loss(at="06:30")),
            "incidents.0.at",
            "06:30 is outside the window",
            id="capacity-loss-outside-window",
        ),
        pytest.param(
            lambda d: d["groups"][0].update(population=-5), "groups.0.population", "greater than 0", id="negative"
        ),
        pytest.param(
            lambda d: d["groups"][0].update(participation=1.5),
            "groups.0.participation",
            "less than or equal",
            id="participation",
        ),
        pytest.param(
            lambda d: d["groups"][0].update(persona="robot"), "groups.0.persona", "'student', 'teacher'", id="persona"
        ),
        pytest.param(
            lambda d: d["groups"][0]["login_time"].update(mean="8h"),
            "groups.0.login_time.mean",
            "pattern",
            id="clock-format",
        ),
        pytest.param(
            lambda d: d["groups"][0]["login_time"].update(mean=470),
            "groups.0.login_time.mean",
            'quoted clock time such as "08:30"',
            id="unquoted-clock",
        ),
        pytest.param(
            lambda d: d["groups"][0]["login_time"].update(distribution="gamma"),
            "groups.0.login_time",
            "'normal', 'lognormal', 'empirical'",
            id="unknown-distribution",
        ),
        pytest.param(
            lambda d: d["groups"][4]["login_time"].update(cumulative=[["07:00", 0], ["08:00", 0.6], ["09:00", 0.4]]),
            "groups.4.login_time.cumulative",
            "cumulative",
            id="empirical-not-a-cdf",
        ),
        pytest.param(
            lambda d: d["groups"][2]["session"].pop("sigma"),
            "groups.2.session",
            "lognormal distribution needs sigma",
            id="lognormal-without-sigma",
        ),
        pytest.param(
            lambda d: d["groups"][2]["think"].update(mean_seconds=0),
            "groups.2.think.mean_seconds",
            "greater than 0",
            id="think-time",
        ),
        pytest.param(
            lambda d: d["groups"][2]["behaviour"].update(homwork=0.2),
            "groups.2.behaviour.homwork",
            "not an action of a student; expected some of: dashboard, homework, homework-submit, messages, timetable",
            id="unknown-action",
        ),
        pytest.param(
            lambda d: d["groups"][2]["retry"].update(backoff="linear"),
            "groups.2.retry.backoff",
            "'exponential-full-jitter' or 'impatient-reload'",
            id="backoff-kind",
        ),
        pytest.param(
            lambda d: d["groups"][2]["retry"].update(cap_seconds=1),
            "groups.2.retry",
            "must be at least base_seconds",
            id="retry-bounds",
        ),
        pytest.param(
            lambda d: d["groups"][3].update(virtual_class=0.1),
            "groups.3.virtual_class",
            "not a parent; expected 0",
            id="parent-in-virtual-class",
        ),
        pytest.param(
            lambda d: d["incidents"].append(_loss(restored_at="08:00")),
            "incidents.0",
            "restored_at 08:00 must be after at 08:15",
            id="restored-before-loss",
        ),
        pytest.param(
            lambda d: d["incidents"].append(_loss(fraction=0)),
            "incidents.0.fraction",
            "greater than 0",
            id="capacity-fraction",
        ),
        pytest.param(
            lambda d: d["slo"].update(login_p99_ms=1000),
            "slo",
            "login_p99_ms 1000 must be at least login_p95_ms 2000",
            id="slo-percentiles",
        ),
        pytest.param(
            lambda d: d["slo"]["window"].update(end="11:00"),
            "slo.window.end",
            "11:00 is outside the window",
            id="slo-window",
        ),
        pytest.param(lambda d: d["window"].update(end="07:00"), "window", "must be after start", id="window"),
        pytest.param(
            lambda d: d["groups"].append(dict(d["groups"][0])), "groups", "repeated: virtual-class-teachers", id="dup"
        ),
        pytest.param(lambda d: d["run"].update(scale=2), "run.scale", "less than or equal to 1", id="scale"),
        pytest.param(lambda d: d.pop("slo"), "slo", "Field required", id="missing"),
    ],
)
def test_wrong_field_is_named_in_one_line(tmp_path: Path, change, field: str, expected: str) -> None:
    def with_incidents(data: dict) -> None:
        data.setdefault("incidents", [])
        change(data)

    path = _write_variant(tmp_path, with_incidents)
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert expected in message, message
    assert "\n" not in message


def test_several_problems_are_counted_after_the_first(tmp_path: Path) -> None:
    def two_mistakes(data: dict) -> None:
        data["groups"][0]["population"] = -1
        data["groups"][1]["participation"] = 7

    with pytest.raises(ScenarioError, match=r"groups\.0\.population: .* \(and 1 more problem\)$"):
        load_scenario(_write_variant(tmp_path, two_mistakes))


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


@pytest.mark.parametrize("command", ["run", "plan"])
def test_cli_exits_2_on_a_bad_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    path = _write_variant(tmp_path, lambda d: d["groups"][0].update(population=-1))
    extra = ["--reports-dir", str(tmp_path / "reports")] if command == "run" else ["--chart", str(tmp_path / "c.png")]
    assert main([command, str(path), *extra]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert error.startswith("schoolsurge: ") and "groups.0.population" in error and "\n" not in error
    assert not any(tmp_path.iterdir()) or list(tmp_path.iterdir()) == [path], "nothing is created for a bad file"


def test_clock_round_trip() -> None:
    assert clock_to_seconds("08:30") == 30_600
    assert seconds_to_clock(30_600) == "08:30"
    assert seconds_to_clock(30_659.9) == "08:30"
    with pytest.raises(ValueError):
        clock_to_seconds("25:00")
