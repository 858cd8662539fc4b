"""What the engine, the personas and the load shape know about the run, built once per Locust process from its
run spec (spec.py): the spec, the scenario replayed (scale, speed), the accounts, the client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.accounts import AccountSource, accounts_for
from schoolsurge.clients.base import ClientSettings, PlatformClient
from schoolsurge.models.replay import Replay
from schoolsurge.parameters import RunParameters
from schoolsurge.scenario import Group, Scenario, load_scenario
from schoolsurge.spec import MonitoringSpec, RunSpec, run_dir_of, spec_of


@dataclass
class SurgeContext:
    spec: RunSpec
    replay: Replay
    accounts: AccountSource
    client_class: type[PlatformClient]
    client_settings: ClientSettings = ClientSettings()
    run_dir: Path | None = None
    admin_token: str | None = None  # the platform's, for capacity-loss incidents (never in the spec)
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
    def parameters(self) -> RunParameters:
        return self.spec.parameters

    @property
    def scenario_path(self) -> Path:
        return self.spec.scenario

    @property
    def allow_host(self) -> str | None:
        return self.spec.allow_host

    @property
    def monitoring(self) -> MonitoringSpec:
        return self.spec.monitoring

    @property
    def seed(self) -> int:
        return self.spec.seed

    def group(self, name: str) -> Group:
        return self.scenario.group(name)

    def credentials(self, group: Group, person: int) -> tuple[str, str]:
        return self.accounts.credentials(group.persona, self._offsets[group.name] + person)

    def expected_concurrency(self, run_s: float) -> float:
        return self.replay.concurrent_at(run_s)


def build_context(options: Any) -> SurgeContext:
    """The run context from a Locust process's parsed options: the spec --run-spec names, or the one its options
    give (--scenario, --scale, --speed, --seed, --accounts, --client...). Raises a UsageError (ScenarioError,
    ParameterError, SpecError, AccountsError, ClientError) naming what is wrong."""
    return context_from_spec(spec_of(options), run_dir_of(options), getattr(options, "admin_token", None))


def context_from_spec(spec: RunSpec, run_dir: Path | None = None, admin_token: str | None = None) -> SurgeContext:
    """The run context of a spec: its scenario loaded and replayed, its accounts read, its client loaded."""
    scenario = load_scenario(spec.scenario)
    replay = spec.replay(scenario)
    accounts = accounts_for(spec.accounts, spec.seed, replay.platform_pupils, scenario.personas)
    client_class, client_settings = spec.client.configured()
    return SurgeContext(
        spec=spec,
        replay=replay,
        accounts=accounts,
        client_class=client_class,
        client_settings=client_settings,
        run_dir=run_dir,
        admin_token=admin_token,
    )
