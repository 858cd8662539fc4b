"""Shared fixtures: one real reference platform per test session, on an ephemeral loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schoolsurge.accounts import Roster
from schoolsurge.platform.process import PlatformProcess

# Small and cheap: about 100 accounts at bcrypt cost 4 seed in well under a second.
PLATFORM_SEED = 2021
PLATFORM_SIZE = 60
PLATFORM_HASH_COST = 4


@pytest.fixture(scope="session")
def platform_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    root = tmp_path_factory.mktemp("platform")
    with PlatformProcess(
        seed=PLATFORM_SEED,
        size=PLATFORM_SIZE,
        hash_cost=PLATFORM_HASH_COST,
        db=root / "platform.sqlite3",
        log_path=root / "platform.log",
        startup_timeout=60,
    ) as proc:
        yield proc


@pytest.fixture(scope="session")
def platform_url(platform_process: PlatformProcess) -> str:
    """Base URL (e.g. http://127.0.0.1:41234) of the running reference platform."""
    return platform_process.base_url


@pytest.fixture(scope="session")
def platform_roster() -> Roster:
    """The roster the platform_url platform was seeded from (credentials and relations)."""
    return Roster(PLATFORM_SEED, PLATFORM_SIZE)
