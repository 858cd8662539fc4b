"""Who logs in: the reference platform's roster derived from a seed, and where a run's credentials come from."""

from schoolsurge.accounts.roster import (
    CHILDREN_WEIGHTS,
    CLASS_SIZE,
    LEVELS,
    NATIONAL_PUPILS,
    PRIMARY_LEVELS,
    ROLES,
    SECONDARY_LEVELS,
    Roster,
    apportion,
    password,
    smallest_roster,
    username,
)
from schoolsurge.accounts.sources import AccountSource, CsvAccounts, SeededAccounts, accounts_for

__all__ = [
    "CHILDREN_WEIGHTS",
    "CLASS_SIZE",
    "LEVELS",
    "NATIONAL_PUPILS",
    "PRIMARY_LEVELS",
    "ROLES",
    "SECONDARY_LEVELS",
    "AccountSource",
    "CsvAccounts",
    "Roster",
    "SeededAccounts",
    "accounts_for",
    "apportion",
    "password",
    "smallest_roster",
    "username",
]
