"""What the engine, the personas and the load shape need to know about the run, built once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.accounts import Roster
from schoolsurge.accounts_source import AccountSource, CsvAccounts, SeededAccounts
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import people_at_scale
from schoolsurge.scenario import Group, Scenario, load_scenario

log = logging.getLogger(__name__)


@dataclass
class SurgeContext:
    replay: Replay
    seed: int
    accounts: AccountSource
    run_dir: Path | None = None
    late_after_s: float = 1.0
    drop_after_s: float = 60.0
    _offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # People of a persona's groups take consecutive account indices, so two groups never share one.
        next_index: dict[str, int] = {}
        for group in self.scenario.groups:
            self._offsets[group.name] = next_index.get(group.persona, 0)
            next_index[group.persona] = self._offsets[group.name] + people_at_scale(group, self.replay.scale)

    @property
    def scenario(self) -> Scenario:
        return self.replay.scenario

    def group(self, name: str) -> Group:
        return self.scenario.group(name)

    def credentials(self, group: Group, person: int) -> tuple[str, str]:
        return self.accounts.credentials(group.persona, self._offsets[group.name] + person)

    def expected_concurrency(self, run_s: float) -> float:
        return self.replay.concurrent_at(run_s)


def build_context(options: Any) -> SurgeContext:
    """Build the run context from Locust's parsed options (--scenario, --scale, --speed, --seed, --accounts...)."""
    scenario = load_scenario(options.scenario)
    scale = options.scale if options.scale is not None else scenario.run.scale
    speed = options.speed if options.speed is not None else scenario.run.speed
    seed = options.seed if options.seed is not None else scenario.run.seed
    replay = Replay(scenario, scale, speed)
    accounts_file = getattr(options, "accounts", None)
    accounts: AccountSource
    if accounts_file:
        accounts = csv_accounts = CsvAccounts(Path(accounts_file))
        csv_accounts.require_roles(g.persona for g in scenario.groups if g.persona != "bot")
        if csv_accounts.duplicates:
            log.warning(
                "%s: %d username(s) listed more than once (first: %s); those people share an account",
                accounts_file,
                len(csv_accounts.duplicates),
                csv_accounts.duplicates[0],
            )
    else:
        accounts = SeededAccounts(Roster(seed, replay.platform_pupils))
    run_dir = getattr(options, "run_dir", None)
    return SurgeContext(
        replay=replay,
        seed=seed,
        accounts=accounts,
        run_dir=Path(run_dir) if run_dir else None,
        late_after_s=getattr(options, "late_after", None) or 1.0,
        drop_after_s=getattr(options, "drop_after", None) or 60.0,
    )
