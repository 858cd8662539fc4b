"""Bad input to the command line gets one clear line and exit 2, before anything is created or started."""

from __future__ import annotations

import logging
import resource
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from schoolsurge.accounts import CsvAccounts
from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.clients import Dashboard, PlatformClient
from schoolsurge.engine import build_context
from schoolsurge.errors import AccountsError, RunTooLargeError
from schoolsurge.runner import FORCED_PROCESSES_PER_CORE, check_processes, usable_cores
from schoolsurge.spec import configured_client

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    error = capsys.readouterr().err.strip()
    assert error and "\n" not in error and "Traceback" not in error, error
    return error


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--scale", "-1", "(0, 1]"),
        ("--scale", "0", "(0, 1]"),
        ("--scale", "nan", "finite"),
        ("--speed", "0", "above 0"),
        ("--speed", "nan", "finite"),
        ("--speed", "inf", "finite"),
        ("--seed", "-1", "0 or more"),
        ("--seed", "x", "whole number"),
        ("--processes", "0", "1 or more"),
        ("--drain-limit", "0", "above 0"),
        ("--drain-limit", "-5", "above 0"),
        ("--drain-limit", "inf", "finite"),
    ],
)
def test_run_options_are_checked_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, expected: str
) -> None:
    assert main(["run", str(SMOKE), option, value, "--reports-dir", str(tmp_path)]) == EXIT_USAGE
    error = _one_line_error(capsys)
    assert option in error and expected in error
    assert not any(tmp_path.iterdir()), "no run directory for a refused run"


@pytest.mark.parametrize(("option", "value"), [("--scale", "-1"), ("--speed", "inf")])
def test_plan_options_are_checked(capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    assert main(["plan", str(SMOKE), option, value]) == EXIT_USAGE
    assert option in _one_line_error(capsys)


def test_a_run_this_machine_cannot_hold_is_refused_with_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The whole national morning at scale 1: hundreds of Locust processes and far more memory than 2 cores have.
    assert main(["run", str(FIRST_DAY), "--scale", "1", "--reports-dir", str(tmp_path)]) == EXIT_USAGE
    error = _one_line_error(capsys)
    assert "Locust processes" in error and "--scale" in error and "--force" in error
    assert not any(tmp_path.iterdir())


def test_a_scenario_that_is_not_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(SMOKE.read_text(encoding="utf-8").replace("hour", "heure élève").encode("latin-1"))
    assert main(["plan", str(latin1)]) == EXIT_USAGE
    error = _one_line_error(capsys)
    assert str(latin1) in error and "UTF-8" in error


def test_an_endless_file_is_not_read_without_bound(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "/dev/zero"]) == EXIT_USAGE
    assert "/dev/zero" in _one_line_error(capsys)


# ---- accounts files ------------------------------------------------------------------------------------


def _accounts(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "accounts.csv"
    path.write_text(text, encoding=encoding)
    return path


def _context_options(accounts: Path) -> Namespace:
    return Namespace(scenario=str(SMOKE), scale=None, speed=None, seed=None, accounts=str(accounts))


def test_accounts_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    text = "role,username,password\nstudent,jeanne,pw1\nteacher,paul,pw2\nparent,marie,pw3\n"
    accounts = CsvAccounts(_accounts(tmp_path, text, encoding="utf-8-sig"))  # what spreadsheets export
    assert accounts.credentials("student", 0) == ("jeanne", "pw1")
    assert accounts.credentials("parent", 5) == ("marie", "pw3")


def test_a_header_only_accounts_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AccountsError, match="no account below the header"):
        CsvAccounts(_accounts(tmp_path, "role,username,password\n"))


def test_accounts_missing_a_role_of_the_scenario_are_refused_before_the_run(tmp_path: Path) -> None:
    path = _accounts(tmp_path, "role,username,password\nstudent,jeanne,pw1\nteacher,paul,pw2\n")
    with pytest.raises(AccountsError, match="no account with role parent") as refused:
        build_context(_context_options(path))
    assert "\n" not in str(refused.value)


def test_duplicate_usernames_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _accounts(
        tmp_path, "role,username,password\nstudent,jeanne,a\nstudent,jeanne,a\nteacher,paul,b\nparent,marie,c\n"
    )
    with caplog.at_level(logging.WARNING):
        context = build_context(_context_options(path))
    assert context.credentials(context.scenario.group("teachers"), 0) == ("paul", "b")
    assert any("jeanne" in record.getMessage() and "more than once" in record.getMessage() for record in caplog.records)


def test_accounts_are_taken_in_turn_per_role_and_a_bad_line_is_named(tmp_path: Path) -> None:
    text = "password,role,username\n1,student,a\n2,teacher,t\n3,student,b\n\n4,parent,p\n"
    accounts = CsvAccounts(_accounts(tmp_path, text))
    assert [accounts.credentials("student", i) for i in range(3)] == [("a", "1"), ("b", "3"), ("a", "1")]
    assert accounts.credentials("parent", 0) == ("p", "4")
    with pytest.raises(AccountsError, match="line 3: role must be one of student, teacher, parent"):
        CsvAccounts(_accounts(tmp_path, "role,username,password\nstudent,a,1\nrobot,r,2\n"))
    with pytest.raises(AccountsError, match="expected a header line"):
        CsvAccounts(_accounts(tmp_path, "name,pass\na,b\n"))


GOOD_ACCOUNTS = "role,username,password\nstudent,jeanne,pw1\nteacher,paul,pw2\nparent,marie,pw3\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD_ACCOUNTS.replace("jeanne", "jea\0nne"), "line 2: the username holds the control character '\\x00'"),
        (GOOD_ACCOUNTS.replace("pw2", ""), "line 3: empty password"),
        (GOOD_ACCOUNTS.replace("pw3", "pw3,extra"), "line 4: 4 fields, expected 3"),
        (GOOD_ACCOUNTS.replace("password", "password,email"), "no other column"),
        (GOOD_ACCOUNTS.replace("paul", '"pa\nul"'), "line 4: the username holds the control character '\\n'"),
        (GOOD_ACCOUNTS.replace("parent,marie,pw3\n", ""), "no account with role parent"),
    ],
    ids=["nul", "empty-password", "extra-field", "extra-column", "line-break", "missing-role"],
)
def test_a_bad_accounts_file_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    reports = tmp_path / "reports"
    path = _accounts(tmp_path, text)
    # At the highest speed the smoke scenario takes: a regression runs one second, not thirty.
    assert main(["run", str(SMOKE), "--accounts", str(path), "--speed", "3600", "--reports-dir", str(reports)]) == 2
    error = _one_line_error(capsys)
    assert str(path) in error and expected in error, error
    assert not reports.exists() or not any(reports.iterdir()), "no run directory for a refused run"


def test_an_endless_accounts_file_is_not_read_without_bound(tmp_path: Path) -> None:
    def bounded_memory() -> None:  # should the reading regress, the run fails short of taking the machine's memory
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    command = [sys.executable, "-m", "schoolsurge", "run", str(SMOKE), "--accounts", "/dev/zero"]
    command += ["--reports-dir", str(tmp_path)]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, preexec_fn=bounded_memory, cwd=ROOT)
    assert finished.returncode == EXIT_USAGE, finished.stderr[-2000:]
    assert finished.stderr.strip() == (
        "schoolsurge: /dev/zero: a line longer than 4096 characters, which no account is; "
        "give a CSV file role,username,password"
    )
    assert not any(tmp_path.iterdir())


# ---- client options ------------------------------------------------------------------------------------


class _TimedClient(PlatformClient):
    """A client that declares one option of its own, a number."""

    option_types = {"timeout_s": float}

    def login(self, username: str, password: str) -> None: ...

    def logout(self) -> None: ...

    def dashboard(self) -> Dashboard:
        return Dashboard()


def test_a_declared_client_option_is_parsed_by_its_type() -> None:
    options = Namespace(client="test_bad_input:_TimedClient", client_option=["timeout_s=2.5"], cas_url=None)
    client_class, settings = configured_client(options)
    assert client_class is _TimedClient and settings.options == {"timeout_s": 2.5}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--client-option", "tenant=paris"], "--client-option tenant: not an option of ReferencePlatformClient"),
        (["--client-option", "no-equals-sign"], "expected KEY=VALUE"),
        (["--client", "test_bad_input:_TimedClient", "--client-option", "timeout_s=soon"], "not a value _TimedClient"),
        (["--client", "test_bad_input:_TimedClient", "--client-option", "retries=3"], "its options: timeout_s"),
        (["--cas-url", "cas.example.fr/cas"], "--cas-url"),
        (["--home-url", "http://192.0.2.1/"], "--allow-host"),
        (["--home-url", "http://127.0.0.1:9/home"], "--home-url: ReferencePlatformClient does not read it"),
        (
            ["--client", "schoolsurge.clients.cas:CasClient", "--journey-map", "embedded"],
            "--journey-map: CasClient does not read it (its pages are its own); leave it out, or choose a client "
            "that does with --client schoolsurge.clients.web:WebClient",
        ),
    ],
    ids=[
        "unknown-key",
        "not-key-value",
        "wrong-type",
        "undeclared-key",
        "not-a-url",
        "not-loopback",
        "home-url-not-read",
        "journey-map-not-read",
    ],
)
def test_bad_client_options_are_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    command = ["run", str(SMOKE), *arguments, "--speed", "3600", "--reports-dir", str(tmp_path)]
    assert main(command) == EXIT_USAGE
    assert expected in _one_line_error(capsys)
    assert not any(tmp_path.iterdir()), "no run directory for a refused run"


# ---- what the models cannot replay ---------------------------------------------------------------------


def _scenario_with(tmp_path: Path, old: str, new: str) -> Path:
    scenario = tmp_path / "scenario.yaml"
    text = SMOKE.read_text(encoding="utf-8")
    assert old in text
    scenario.write_text(text.replace(old, new), encoding="utf-8")
    return scenario


UNREPLAYABLE = [
    (["--target", "http://127.0.0.1:99999"], "target 'http://127.0.0.1:99999': the port must be a number from 1 to"),
    (["--scale", "1e-300"], "--scale 1e-300 simulates nobody of scenario smoke; give --scale 3.3e-07 or more"),
    (["--speed", "1e308"], "--speed 1e+308 replays the window 07:30-08:30 of scenario smoke in less than 1 s; give"),
]


@pytest.mark.parametrize(("arguments", "expected"), UNREPLAYABLE, ids=["port", "scale", "speed"])
def test_values_the_models_cannot_replay_are_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], expected: str
) -> None:
    assert main(["run", str(SMOKE), *arguments, "--reports-dir", str(tmp_path)]) == EXIT_USAGE
    error = _one_line_error(capsys)
    assert expected in error, error
    assert not any(tmp_path.iterdir()), "no run directory for a refused run"


@pytest.mark.parametrize("command", ["plan", "capacity"])
@pytest.mark.parametrize(("option", "value"), [("--scale", "1e-300"), ("--speed", "1e308")])
def test_plan_and_capacity_refuse_them_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, option: str, value: str
) -> None:
    extra = ["--reports-dir", str(tmp_path)] if command == "capacity" else ["--chart", str(tmp_path / "plan.png")]
    assert main([command, str(SMOKE), option, value, *extra]) == EXIT_USAGE
    assert option in _one_line_error(capsys)
    assert not any(tmp_path.iterdir())


def test_a_scenario_of_more_people_than_the_models_hold_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = _scenario_with(tmp_path, "pupils: 12700000", "pupils: 10000000000000000000000000")  # 1e25
    reports = tmp_path / "reports"
    assert main(["run", str(scenario), "--reports-dir", str(reports)]) == EXIT_USAGE
    assert "pupils: Input should be less than or equal to 100000000" in _one_line_error(capsys)
    assert not reports.exists() or not any(reports.iterdir())


def test_a_run_larger_than_the_embedded_platform_is_refused_before_it_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 12.7M pupils at scale 1: more accounts than the embedded platform seeds (--force lifts the machine check).
    assert main(["run", str(FIRST_DAY), "--scale", "1", "--force", "--reports-dir", str(tmp_path)]) == EXIT_USAGE
    assert "the embedded platform holds 10,000,000 at most" in _one_line_error(capsys)
    assert not any(tmp_path.iterdir())


def _plain_locust(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`locust -f locustfiles/surge.py --headless ...` as a user starts it (a regression runs at most a second)."""
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "surge.py"), "--headless"]
    command += ["--run-dir", str(tmp_path / "run"), *arguments]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--scenario", str(SMOKE), "-H", "http://127.0.0.1:99999", "--speed", "3600"], "99999"),
        (["--scenario", str(SMOKE), "-H", "http://127.0.0.1:9", "--scale", "1e-300"], "--scale 1e-300"),
        (["--scenario", str(SMOKE), "-H", "http://127.0.0.1:9", "--speed", "1e308"], "--speed 1e+308"),
        (["--scenario", "PUPILS_1E25", "-H", "http://127.0.0.1:9", "--speed", "3600"], "pupils"),
    ],
    ids=["port", "scale", "speed", "pupils"],
)
def test_plain_locust_refuses_them_in_one_line(tmp_path: Path, arguments: list[str], expected: str) -> None:
    pupils = _scenario_with(tmp_path, "pupils: 12700000", "pupils: 10000000000000000000000000")
    finished = _plain_locust(tmp_path, *[str(pupils) if a == "PUPILS_1E25" else a for a in arguments])
    ours = [line for line in finished.stderr.splitlines() if line.startswith("schoolsurge:")]
    assert finished.returncode == EXIT_USAGE, finished.stderr[-2000:]
    assert len(ours) == 1 and expected in ours[0], finished.stderr[-2000:]
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "reports").exists()


# ---- Locust processes ----------------------------------------------------------------------------------


def test_processes_are_bounded_by_the_cores_and_by_a_ceiling_even_when_forced() -> None:
    check_processes(None, force=False, cores=2)
    check_processes(2, force=False, cores=2)
    check_processes(8, force=True, cores=2)
    for processes, force in ((3, False), (9, True), (100_000, True)):
        with pytest.raises(RunTooLargeError, match=f"--processes {processes}: this machine has 2 cores"):
            check_processes(processes, force=force, cores=2)


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
def test_more_processes_than_the_machine_holds_are_refused_before_any_fork(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: bool
) -> None:
    processes = usable_cores() * (FORCED_PROCESSES_PER_CORE if force else 1) + 1
    # Should the refusal regress, Locust would stop at this locustfile, which it loads before forking anything.
    never_loaded = tmp_path / "never_loaded.py"
    never_loaded.write_text("raise SystemExit('this locustfile is loaded only when --processes was not refused')\n")
    reports = tmp_path / "reports"
    command = ["run", str(SMOKE), "--processes", str(processes), *(["--force"] if force else [])]
    command += ["--target", "http://127.0.0.1:9", "--locustfile", str(never_loaded), "--reports-dir", str(reports)]
    assert main(command) == EXIT_USAGE
    assert f"--processes {processes}: this machine has {usable_cores()} cores" in _one_line_error(capsys)
    assert not reports.exists() or not any(reports.iterdir())
