"""Where the load generator's people get their credentials: derived from the seed (reference platform) or
read from a CSV file of test accounts (any other platform)."""

from __future__ import annotations

import csv
import logging
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol, TextIO

from schoolsurge.accounts.roster import SECONDARY_LEVELS, Roster
from schoolsurge.errors import AccountsError

log = logging.getLogger(__name__)
CSV_COLUMNS = ("role", "username", "password")
CSV_ROLES = ("student", "teacher", "parent")
MAX_LINE_CHARS = 4096  # far above any role,username,password; a longer line (a device, a wrong file) is refused


class AccountSource(Protocol):
    def credentials(self, role: str, index: int) -> tuple[str, str]:
        """(username, password) of a role's index-th person in the run; indices wrap around what exists."""


class SeededAccounts:
    """Accounts of the embedded platform, derived from (seed, pupils) like its database. Pupils who log in
    themselves are secondary pupils (docs/facts.md#timing-and-behaviour: primary pupils log in through their
    parents), so secondary teachers come first too: they open the virtual classes those pupils join."""

    def __init__(self, roster: Roster) -> None:
        self.roster = roster
        secondary_classes = {c for level in SECONDARY_LEVELS for c in roster.classes_of_level(level)}
        self._order = {
            "student": [i for level in SECONDARY_LEVELS for i in roster.pupils_of_level(level)],
            "teacher": sorted(
                range(roster.teachers),
                key=lambda t: not secondary_classes.intersection(roster.classes_of_teacher(t)),
            ),
        }

    def credentials(self, role: str, index: int) -> tuple[str, str]:
        order = self._order.get(role)
        if order:
            return self.roster.credentials(role, order[index % len(order)])
        return self.roster.credentials(role, index)


class CsvAccounts:
    """A CSV file with a header `role,username,password`, one test account a line. A byte-order mark (what
    spreadsheet programs write) is accepted; a repeated username is kept but reported in `duplicates`. Refused,
    naming the line: a missing or extra field, a role that is not a persona, an empty username or password, a
    control character (a NUL, a line break inside quotes) in either."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.by_role: dict[str, list[tuple[str, str]]] = {}
        self.duplicates: list[str] = []
        seen: set[str] = set()
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(_bounded_lines(handle, self.path))
                header = [name.strip() for name in next(reader, [])]
                if sorted(header) != sorted(CSV_COLUMNS):
                    raise AccountsError(
                        f"{self.path}: expected a header line `{','.join(CSV_COLUMNS)}` and no other column"
                    )
                for fields in reader:
                    if not fields:
                        continue  # a blank line
                    role, username, password = self._account(reader.line_num, fields, header)
                    if username in seen:
                        self.duplicates.append(username)
                    seen.add(username)
                    self.by_role.setdefault(role, []).append((username, password))
        except OSError as error:
            raise AccountsError(f"{self.path}: cannot read accounts file ({error.strerror})") from None
        except (UnicodeDecodeError, csv.Error) as error:
            raise AccountsError(f"{self.path}: not a CSV text file ({error}); export it as UTF-8 CSV") from None
        if not self.by_role:
            raise AccountsError(f"{self.path}: no account below the header; add one line per test account")

    def _account(self, line: int, fields: list[str], header: list[str]) -> tuple[str, str, str]:
        """(role, username, password) of one line, or AccountsError naming the line and what to fix."""
        where = f"{self.path}: line {line}"
        if len(fields) != len(header):
            raise AccountsError(
                f"{where}: {len(fields)} fields, expected {len(header)} `{','.join(header)}` "
                "(quote a field that holds a comma)"
            )
        account = dict(zip(header, fields, strict=True))
        role = account["role"].strip()
        if role not in CSV_ROLES:
            raise AccountsError(f"{where}: role must be one of {', '.join(CSV_ROLES)}, got {role!r}")
        for column in ("username", "password"):
            value = account[column]
            if not value:
                raise AccountsError(f"{where}: empty {column}; give every account its {column}")
            control = next((c for c in value if unicodedata.category(c) == "Cc"), None)
            if control is not None:
                raise AccountsError(f"{where}: the {column} holds the control character {control!r}; remove it")
        return role, account["username"], account["password"]

    def require_roles(self, roles: Iterable[str]) -> None:
        """Refuse, before any load, a file that lacks a role the scenario's people need."""
        missing = sorted(set(roles) - set(self.by_role))
        if missing:
            raise AccountsError(
                f"{self.path}: no account with role {', '.join(missing)}, but the scenario has people of "
                f"{'that role' if len(missing) == 1 else 'those roles'}; add lines `{missing[0]},USERNAME,PASSWORD`"
            )

    def credentials(self, role: str, index: int) -> tuple[str, str]:
        accounts = self.by_role[role]  # require_roles() has checked every role the scenario uses
        return accounts[index % len(accounts)]


def _bounded_lines(handle: TextIO, path: Path) -> Iterator[str]:
    """The file's lines, each read MAX_LINE_CHARS at most: a file with no line end is not read without bound."""
    while line := handle.readline(MAX_LINE_CHARS + 1):
        if len(line) > MAX_LINE_CHARS:
            raise AccountsError(
                f"{path}: a line longer than {MAX_LINE_CHARS} characters, which no account is; "
                "give a CSV file role,username,password"
            )
        yield line


def accounts_for(accounts_file: Path | None, seed: int, pupils: int, roles: Iterable[str]) -> AccountSource:
    """The run's accounts: a CSV file checked for every role the scenario needs, else the seeded roster."""
    if accounts_file is None:
        return SeededAccounts(Roster(seed, pupils))
    accounts = CsvAccounts(accounts_file)
    accounts.require_roles(roles)
    if accounts.duplicates:
        log.warning(
            "%s: %d username(s) listed more than once (first: %s); those people share an account",
            accounts_file,
            len(accounts.duplicates),
            accounts.duplicates[0],
        )
    return accounts
