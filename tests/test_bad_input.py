"""Bad input to the command line gets one clear line and exit 2, before anything is created or started."""

from __future__ import annotations

import logging
from argparse import Namespace
from pathlib import Path

import pytest

from schoolsurge.accounts import CsvAccounts
from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.engine import build_context
from schoolsurge.errors import AccountsError

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
    text = "role,username,password\nstudent,a,1\nteacher,t,2\nstudent,b,3\nparent,p,\n"
    accounts = CsvAccounts(_accounts(tmp_path, text))
    assert [accounts.credentials("student", i) for i in range(3)] == [("a", "1"), ("b", "3"), ("a", "1")]
    assert accounts.credentials("parent", 0) == ("p", "")
    with pytest.raises(AccountsError, match="line 3: role must be one of student, teacher, parent"):
        CsvAccounts(_accounts(tmp_path, "role,username,password\nstudent,a,1\nrobot,r,2\n"))
    with pytest.raises(AccountsError, match="expected a header line"):
        CsvAccounts(_accounts(tmp_path, "name,pass\na,b\n"))
