"""Students, teachers and parents as Locust user classes (the closed model, locustfiles/personas.py) on real
Locust against the embedded platform on loopback: the three classes together, each class alone, a master with
two workers, the web UI's class picker; and the closed-model share's weights and person numbering."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from schoolsurge.engine.closed import ClosedShare, persona_shares
from schoolsurge.models.replay import Replay
from schoolsurge.parameters import resolve_parameters
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.runner import free_loopback_port
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
PERSONAS = ROOT / "locustfiles" / "personas.py"
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"
SPEED = 240  # sessions of a few seconds; a teacher's lesson outlasts the run
CLASSES = ("Student", "Teacher", "Parent")
HEADLESS = ["--headless", "--only-summary", "--exit-code-on-error", "0", "--speed", str(SPEED)]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke scenario with half the pupils coming for a virtual class: the other half browse (homework,
    timetable), so a pupil alone, with no teacher to open a class, still shows more than a dashboard."""
    data = yaml.safe_load(SMOKE.read_text())
    next(g for g in data["groups"] if g["persona"] == "student")["virtual_class"] = 0.5
    path = tmp_path_factory.mktemp("scenario") / "smoke.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    smoke = load_scenario(SMOKE)
    directory = tmp_path_factory.mktemp("platform")
    with PlatformProcess(
        seed=smoke.run.seed,
        size=Replay(smoke, smoke.run.scale, SPEED).platform_pupils,  # the accounts the personas log in with
        hash_cost=4,
        profile="resized",
        cache_dir=platform_cache,
        db=directory / "db.sqlite3",
        log_path=directory / "platform.log",
    ) as process:
        yield process


def _locust(url: str, scenario: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(PERSONAS), "-H", url, "--scenario", str(scenario), *args]


@pytest.fixture(scope="module")
def runs(platform: PlatformProcess, scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Headless runs, all at once (they are short and mostly wait): the three classes with -u/-r in a plain
    `locust -f` run (its run directory under ./reports), and each class alone. Returns each run's directory."""
    commands: dict[str, list[str]] = {"all": _locust(platform.base_url, scenario, *HEADLESS, "-u", "12", "-r", "12")}
    commands["all"] += ["-t", "10s"]
    for name in CLASSES:
        commands[name] = _locust(platform.base_url, scenario, *HEADLESS, "-u", "3", "-r", "3", "-t", "8s", name)
    return _run_all(commands, tmp_path_factory)


def _run_all(commands: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Start the headless Locust `commands` side by side, each in a folder of its own; each one's run directory."""
    started = {}
    for name, command in commands.items():
        cwd = tmp_path_factory.mktemp(name)
        log = (cwd / "locust.log").open("w")
        started[name] = (subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT), cwd)
    directories = {}
    for name, (process, cwd) in started.items():
        try:
            process.wait(timeout=120)
        finally:
            process.kill()
        output = (cwd / "locust.log").read_text()
        assert process.returncode == 0, f"{name}: {output[-3000:]}"
        (directories[name],) = (cwd / "reports").glob("*-smoke-locust")
        (directories[name] / "locust.log").write_text(output)
    return directories


def _successes(run_dir: Path) -> dict[str, int]:
    stats = pd.read_csv(run_dir / "locust_stats.csv")
    stats = stats[stats["Name"] != "Aggregated"]
    return {name: int(row["Request Count"] - row["Failure Count"]) for name, row in stats.set_index("Name").iterrows()}


def _spawned(run_dir: Path) -> dict[str, int]:
    (counts,) = re.findall(r"All users spawned: (\{.*?\})", (run_dir / "locust.log").read_text())[-1:]
    return json.loads(counts)


def _sessions(run_dir: Path) -> pd.Series:
    return pd.read_csv(run_dir / "sessions.csv").sum(numeric_only=True)


def test_the_three_classes_log_in_and_hold_virtual_classes(runs: dict[str, Path]) -> None:
    run_dir = runs["all"]
    assert set(_spawned(run_dir)) == set(CLASSES)
    done = _successes(run_dir)
    assert done["login"] >= 12, "every user logged a person in, most of them several"
    assert done["virtual class: create"] > 0 and done["virtual class: open"] > 0, "teachers opened classes"
    assert done["virtual class: join"] > 0 and done["virtual class: heartbeat"] > 0, "pupils joined them"
    assert done["homework"] > 0 and done["timetable"] > 0
    # A run directory like any other: Locust's CSV files, sessions.csv and the report.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["arrival_model"] == "closed" and manifest["status"] == "completed"
    for name in ("locust_stats_history.csv", "locust_failures.csv", "time_to_login.jsonl", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    sessions = _sessions(run_dir)
    assert sessions["scheduled"] == sessions["started"] >= done["login"], "a person is scheduled as taken on"
    assert sessions["late"] == sessions["dropped"] == 0
    assert sessions["logins_succeeded"] == done["login"]
    assert sessions["virtual_classes_opened"] > 0 and sessions["virtual_class_joins"] > 0


def test_a_student_alone_logs_in_and_browses(runs: dict[str, Path]) -> None:
    assert _spawned(runs["Student"]) == {"Student": 3}
    done = _successes(runs["Student"])
    assert done["login"] >= 3 and done["dashboard"] > 0
    assert done.get("homework", 0) + done.get("timetable", 0) > 0
    assert "virtual class: create" not in done, "pupils never open one (they may join one of the other runs')"


def test_a_teacher_alone_opens_a_virtual_class(runs: dict[str, Path]) -> None:
    assert _spawned(runs["Teacher"]) == {"Teacher": 3}
    done = _successes(runs["Teacher"])
    assert done["login"] >= 3 and done["dashboard"] > 0
    assert done["virtual class: create"] >= 3 and done["virtual class: open"] >= 3
    assert "virtual class: join" not in done


def test_a_parent_alone_checks_homework(runs: dict[str, Path]) -> None:
    assert _spawned(runs["Parent"]) == {"Parent": 3}
    done = _successes(runs["Parent"])
    assert done["login"] >= 3 and done["homework"] > 0 and done["timetable"] > 0
    assert not any(name.startswith("virtual class") for name in done)


@pytest.mark.long  # three more Locust processes; the workers' person numbering is checked quickly below
def test_a_master_with_two_workers_merges_their_sessions(
    platform: PlatformProcess, scenario: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = str(free_loopback_port())
    command = _locust(platform.base_url, scenario, *HEADLESS, "-u", "10", "-r", "10", "-t", "8s")
    command += ["--processes", "2", "--master-bind-port", port, "--master-port", port]
    run_dir = _run_all({"workers": command}, tmp_path_factory)["workers"]
    done = _successes(run_dir)
    sessions = _sessions(run_dir)
    assert done["login"] >= 10 and sessions["logins_succeeded"] == done["login"]
    assert sessions["scheduled"] == sessions["started"] and sessions["virtual_classes_opened"] > 0


def test_the_web_ui_class_picker_lists_the_three_classes(
    platform: PlatformProcess, scenario: Path, tmp_path: Path
) -> None:
    port = free_loopback_port()
    command = _locust(platform.base_url, scenario, "--class-picker", "--web-host", "127.0.0.1")
    command += ["--web-port", str(port)]
    log = (tmp_path / "locust.log").open("w")
    process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        page = _get_page(f"http://127.0.0.1:{port}/", process)
    finally:
        process.kill()
        process.wait(timeout=10)
    arguments = json.loads(re.search(r"templateArgs = (\{.*?\})\s*</script>", page, re.DOTALL)[1])
    assert arguments["show_userclass_picker"] is True
    assert arguments["available_user_classes"] == ["Parent", "Student", "Teacher"]
    shares = persona_shares(load_scenario(scenario))
    for name, persona in zip(CLASSES, ("student", "teacher", "parent"), strict=True):
        assert arguments["users"][name]["weight"] == pytest.approx(shares[persona], abs=1e-4)


def _get_page(url: str, process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_weights_are_the_scenarios_shares_of_logins() -> None:
    shares = persona_shares(load_scenario(FIRST_DAY))
    assert shares == pytest.approx({"teacher": 0.0857, "student": 0.4986, "parent": 0.4157}, abs=1e-3)


def test_persons_are_numbered_per_group_apart_across_workers_and_parents_split_by_share() -> None:
    first_day = load_scenario(FIRST_DAY)
    parameters = resolve_parameters(first_day)
    replay = Replay(first_day, parameters.scale, parameters.speed)
    share = ClosedShare(replay, parameters)
    share.assign(2, 1, time.time())  # the second of two workers
    claims = [share.take_on("parent") for _ in range(100)]
    groups = [claim.arrival.group for claim in claims]
    # primary-families 2.25M logins, secondary-parents 0.7M: 76% and 24%, within one.
    assert abs(groups.count("primary-families") - 76.3) <= 1
    primary = [claim.arrival.person for claim in claims if claim.arrival.group == "primary-families"]
    assert primary[:4] == [1, 3, 5, 7], "the second worker takes odd numbers: none is also the first's"
    assert all(claim.intended_unix <= time.time() for claim in claims)
    ledger = share.ledger
    assert ledger.total("scheduled") == ledger.total("started") == 100 and ledger.total("late") == 0
    with pytest.raises(LookupError):
        ClosedShare(Replay(load_scenario(SMOKE), 2e-5, SPEED), parameters).take_on("nobody")


def test_persona_users_without_the_locustfile_before_them_are_refused_in_one_line(tmp_path: Path) -> None:
    """Their init listener reads the engine that schoolsurge.locustfile's own installs: imported the other way
    round, the run stops before any load, saying what to do."""
    locustfile = tmp_path / "personas_first.py"
    locustfile.write_text(
        "from schoolsurge.engine.persona_users import Student  # noqa: I001 (the order is the point)\n"
        "import schoolsurge.locustfile  # noqa: F401\n"
    )
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "1", "-t", "5s"]
    command += ["-H", "http://127.0.0.1:9", "--scenario", str(SMOKE), "--run-dir", str(tmp_path / "run")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "import schoolsurge.locustfile before them" in result.stderr
