"""What the engine, the personas and the load shape know about the run, built once per Locust process from
the locustfile's options: the scenario replayed (scale, speed), the parameters, the accounts, the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.accounts import AccountSource, accounts_for
from schoolsurge.clients.base import ClientSettings, PlatformClient
from schoolsurge.clients.options import client_settings, load_client_class
from schoolsurge.models.replay import Replay
from schoolsurge.parameters import RunParameters, parameters_from_options
from schoolsurge.scenario import Group, Scenario, load_scenario
from schoolsurge.sweep_options import expected_capacity, resolve_sweep, sweep_settings


@dataclass
class SurgeContext:
    replay: Replay
    parameters: RunParameters
    accounts: AccountSource
    client_class: type[PlatformClient]
    client_settings: ClientSettings = ClientSettings()
    run_dir: Path | None = None
    scenario_path: Path | None = None
    allow_host: str | None = None
    admin_token: str | None = None  # the platform's, for capacity-loss incidents
    _offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # People of a persona's groups take consecutive account indices, so two groups never share one.
        next_index: dict[str, int] = {}
        for group in self.scenario.groups:
            self._offsets[group.name] = next_index.get(group.persona, 0)
            next_index[group.persona] = self._offsets[group.name] + self.replay.people_of(group)

    @property
    def scenario(self) -> Scenario:
        return self.replay.scenario

    @property
    def seed(self) -> int:
        return self.parameters.seed

    def group(self, name: str) -> Group:
        return self.scenario.group(name)

    def credentials(self, group: Group, person: int) -> tuple[str, str]:
        return self.accounts.credentials(group.persona, self._offsets[group.name] + person)

    def expected_concurrency(self, run_s: float) -> float:
        return self.replay.concurrent_at(run_s)


def build_context(options: Any) -> SurgeContext:
    """The run context from parsed options (--scenario, --scale, --speed, --seed, --accounts, --client...).
    Raises a UsageError (ScenarioError, ParameterError, AccountsError, ClientError) naming what is wrong."""
    scenario_path = Path(options.scenario)
    scenario = load_scenario(scenario_path)
    settings = sweep_settings(options)
    replay: Replay
    if settings is None:
        parameters = parameters_from_options(scenario, options)
        replay = Replay(scenario, parameters.scale, parameters.speed)
    else:
        parameters, replay = resolve_sweep(
            scenario,
            settings,
            expected_capacity(options),
            getattr(options, "scale", None),
            getattr(options, "speed", None),
            getattr(options, "seed", None),
            getattr(options, "late_after", None),
            getattr(options, "drop_after", None),
        )
    accounts_file = getattr(options, "accounts", None)
    accounts = accounts_for(
        Path(accounts_file) if accounts_file else None,
        parameters.seed,
        replay.platform_pupils,
        {group.persona for group in scenario.groups},
    )
    run_dir = getattr(options, "run_dir", None)
    return SurgeContext(
        replay=replay,
        parameters=parameters,
        accounts=accounts,
        client_class=load_client_class(getattr(options, "client", None), getattr(options, "sso", None)),
        client_settings=client_settings(options),
        run_dir=Path(run_dir) if run_dir else None,
        scenario_path=scenario_path,
        allow_host=getattr(options, "allow_host", None),
        admin_token=getattr(options, "admin_token", None),
    )
