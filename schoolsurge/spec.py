"""The run spec: one run described once, every default resolved, written once into its run directory.

    spec = build_spec(options, Command.RUN)   # schoolsurge run / capacity; the locustfile for plain Locust
    write_spec(run_dir, spec)                 # run_spec.json (RUN_SPEC), before Locust starts
    spec = spec_of(locust_options)            # every Locust process: the --run-spec file, or its own options

`build_spec` turns parsed options (the option table, options.py) into a RunSpec: a value not given takes the
table's default, the scenario's (scale, speed, seed) or a capacity sweep's (from its plan); it refuses, with one
line naming what is wrong, what any Locust process would refuse (the replay, the target, the client). The Locust
processes `schoolsurge run` starts, its `--processes` workers included, read the spec it wrote (`--run-spec`)
instead of parsing the run's options again; remote workers of a fleet build the same spec from the same options.

Secrets stay out of the file: the OpenID Connect client secret is written empty and every process reads it from
its options (LOCUST_OIDC_CLIENT_SECRET, which `schoolsurge run` sets for its Locust); the admin token is no part
of the spec (LOCUST_ADMIN_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.clients.base import ClientSettings, PlatformClient
from schoolsurge.clients.options import PAGE_SETTINGS, SETTINGS_FIELDS, URL_FIELDS, ClientChoice, check_client_url
from schoolsurge.errors import ClientError, ParameterError, SpecError
from schoolsurge.files import atomic_file, read_regular_text
from schoolsurge.models.population import national_curves
from schoolsurge.models.replay import Replay, load_fraction
from schoolsurge.models.sweep import SweepSettings, mean_session_s
from schoolsurge.options import (
    OPTION_BY_DEST,
    OPTIONS,
    PROFILE_ENV,
    RUNS,
    STARTS,
    Command,
    Section,
    given,
    options_for,
    parse_section_arguments,
)
from schoolsurge.parameters import DRAIN_LIMIT_S, RunParameters, check_parameters, resolve_parameters
from schoolsurge.platform.settings import NATIONAL_LIMITS, PROFILES
from schoolsurge.rundir import RUN_SPEC
from schoolsurge.safety import check_target
from schoolsurge.scenario import Scenario, load_scenario
from schoolsurge.sweep_options import ADVICE as SWEEP_ADVICE
from schoolsurge.sweep_options import resolve_sweep, sweep_settings

SPEC_VERSION = 1
SPEC_SECTIONS = (Section.RUN, Section.CLIENT, Section.SWEEP, Section.MONITORING)  # what a spec holds
# The client settings no file holds (Option.secret), by option: each process reads them from its own options.
SECRET_CLIENT_OPTIONS = {o.dest: o.spec_field for o in OPTIONS if o.section is Section.CLIENT and o.secret}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SweepSpec(_Strict):
    """A capacity sweep instead of the morning: its steps, and the target's expected capacity (x the national
    peak arrival rate), which sets its highest step when not given."""

    settings: SweepSettings
    expected_capacity: float | None


class MonitoringSpec(_Strict):
    """The run's Prometheus side (engine/exporter.py, engine/target_metrics.py): named as its options are."""

    metrics_port: int  # 0: a free port; -1: off
    metrics_host: str
    metrics_linger: float
    target_metrics: str | None  # None: the target's /metrics; "off"


class RunSpec(_Strict):
    """What one run replays, against what, and how: everything its Locust processes need but their own place
    (--run-dir), role and secrets."""

    version: Literal[1] = SPEC_VERSION
    scenario: Path
    scale: float
    speed: float
    seed: int
    late_after_s: float
    drop_after_s: float
    drain_limit_s: float = DRAIN_LIMIT_S  # a morning's: wall seconds after its window before the test ends
    target: str | None  # the platform the user named; None: the embedded one (or plain Locust's --host)
    profile: str | None  # the embedded platform's capacity profile; None when there is none
    allow_host: str | None
    accounts: Path | None  # a CSV of test accounts; None: made from the seed
    processes: int | None  # Locust processes of `schoolsurge run --processes`; None: one
    client: ClientChoice
    sweep: SweepSpec | None  # None: the scenario's morning
    monitoring: MonitoringSpec

    @model_validator(mode="after")
    def _in_range(self) -> RunSpec:
        check_parameters(self.parameters)
        if not 0 < self.drain_limit_s < math.inf:
            raise ParameterError(f"--drain-limit must be a number of seconds above 0, got {self.drain_limit_s:g}")
        return self

    @property
    def parameters(self) -> RunParameters:
        return RunParameters(self.scale, self.speed, self.seed, self.late_after_s, self.drop_after_s)

    @property
    def load_fraction(self) -> float:
        """Share of the national request rate the run offers (fewer people, each faster)."""
        return load_fraction(self.scale, self.speed)

    def replay(self, scenario: Scenario) -> Replay:
        """The scenario replayed as this spec says: its morning, or the sweep (the one place that tells them)."""
        if self.sweep is None:
            return Replay(scenario, self.scale, self.speed)
        try:
            return sweep_replay(scenario, self.sweep.settings, self.scale, self.speed, self.sweep.expected_capacity)
        except ValueError as error:
            raise ParameterError(f"{error}; {SWEEP_ADVICE}") from None


def build_spec(options: Any, command: Command) -> RunSpec:
    """The run the parsed options of `command` describe, every default resolved; raises a UsageError
    (ScenarioError, ParameterError, UnsafeTargetError, ClientError) naming the first thing wrong."""
    sweep = _sweep_settings(options, command)  # before the scenario, as `schoolsurge capacity` always did
    scenario_path = Path(given(options, "scenario"))
    scenario = load_scenario(scenario_path)
    target = given(options, "target") if command in STARTS else None
    profile = None  # the embedded platform's, when there is one
    if command in STARTS:
        chosen = _check_profile(given(options, "profile") or os.environ.get(PROFILE_ENV) or scenario.platform.profile)
        profile = chosen if target is None else None
    run = {"scale": given(options, "scale"), "speed": given(options, "speed"), "seed": given(options, "seed")}
    run |= {"late_after_s": given(options, "late_after"), "drop_after_s": given(options, "drop_after")}
    sweep_spec = None
    if sweep is None:
        parameters = resolve_parameters(scenario, **run)
    else:
        capacity = given(options, "sweep_capacity")
        if capacity is None and profile is not None:
            capacity = profile_capacity(scenario, profile)
        parameters, _ = resolve_sweep(scenario, sweep, capacity, **run)
        sweep_spec = SweepSpec(settings=sweep, expected_capacity=capacity)
    allow_host = given(options, "allow_host")
    if target is not None:
        check_target(target, allow_host)
    client = client_choice(options)
    check_client(client)
    monitoring = {o.dest: given(options, o.dest) for o in options_for(RUNS, Section.MONITORING)}
    accounts = given(options, "accounts")
    return RunSpec(
        scenario=scenario_path,
        scale=parameters.scale,
        speed=parameters.speed,
        seed=parameters.seed,
        late_after_s=parameters.late_after_s,
        drop_after_s=parameters.drop_after_s,
        drain_limit_s=given(options, "drain_limit"),
        target=target,
        profile=profile,
        allow_host=allow_host,
        accounts=None if accounts is None else Path(accounts),
        processes=given(options, "processes") if command in STARTS else None,
        client=client,
        sweep=sweep_spec,
        monitoring=MonitoringSpec(**monitoring),
    )


def client_choice(options: Any) -> ClientChoice:
    """The client parsed options (CLI or Locust) choose; a URL must be one the loopback guard lets through
    (--allow-host)."""
    allow_host = getattr(options, "allow_host", None)
    settings: dict[str, Any] = {}
    for option in options_for(RUNS, Section.CLIENT):
        value = getattr(options, option.dest, None)
        if option.field in SETTINGS_FIELDS and value is not None:
            settings[option.field] = value
            if option.field in URL_FIELDS and value:
                check_client_url(option.flag, value, allow_host)
    pairs = getattr(options, "client_option", None) or ()
    return ClientChoice(getattr(options, "client", None), ClientSettings(**settings), tuple(pairs))


def check_client(choice: ClientChoice) -> None:
    """The class loads, its options parse (as every Locust process will), and it reads every page setting given
    (--home-url, --journey-map): ClientError names the first that cannot be used."""
    client_class, _ = choice.configured()
    for option in options_for(RUNS, Section.CLIENT):
        readers = PAGE_SETTINGS.get(option.field or "")
        if readers and getattr(choice.settings, option.field) and option.field not in client_class.reads_settings:
            raise ClientError(
                f"{option.flag}: {client_class.__name__} does not read it (its pages are its own); leave it out, "
                f"or choose a client that does with --client {readers}"
            )


def configured_client(options: Any) -> tuple[type[PlatformClient], ClientSettings]:
    """The client class (--client) and its settings from parsed options, each checked as the client will use
    it; ClientError names the first option that cannot be used."""
    return client_choice(options).configured()


def check_client_arguments(arguments: Sequence[str], allow_host: str | None = None) -> str:
    """Refuse client options given as command-line arguments that every Locust process would refuse; returns the
    run's single sign-on protocol (--sso)."""
    try:
        options = parse_section_arguments(list(arguments), Command.RUN, Section.CLIENT)
    except argparse.ArgumentError as error:
        raise ClientError(str(error)) from None
    options.allow_host = allow_host
    choice = client_choice(options)
    check_client(choice)
    return choice.settings.sso


def spec_of(options: Any) -> RunSpec:
    """A Locust process's spec: the file --run-spec names (secrets from the options), else its options'."""
    path = getattr(options, "run_spec", None)
    if not path:
        return build_spec(options, Command.LOCUST)
    for option in options_for(Command.LOCUST):
        if option.section in SPEC_SECTIONS and not option.secret and given(options, option.dest) != option.default:
            raise SpecError(f"--run-spec {path} holds the run's options: leave out {option.flag}, or --run-spec")
    return with_secrets(read_spec(Path(path)), options)


def run_dir_of(options: Any) -> Path | None:
    """Where a Locust process writes the run: --run-dir, else the --run-spec's directory, else None (the
    locustfile makes one)."""
    run_dir = getattr(options, "run_dir", None)
    if run_dir:
        return Path(run_dir)
    spec = getattr(options, "run_spec", None)
    return Path(spec).parent if spec else None


def write_spec(run_dir: Path, spec: RunSpec) -> Path:
    """run_spec.json, its secrets left empty."""
    data = spec.model_dump(mode="json", exclude={"client": {"settings": {"options"}}})
    for field in SECRET_CLIENT_OPTIONS.values():
        data["client"]["settings"][field] = ""
    path = run_dir / RUN_SPEC
    with atomic_file(path) as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    return path


def read_spec(path: Path) -> RunSpec:
    """The spec a file holds, checked; SpecError names the file and the first field that is wrong."""
    try:
        return RunSpec.model_validate_json(read_regular_text(path))
    except OSError as error:
        raise SpecError(f"--run-spec {path}: cannot be read ({error.strerror or error})") from None
    except ValidationError as error:
        first = error.errors()[0]
        what = first["msg"].removeprefix("Value error, ")  # a check of the whole spec names its field itself
        if first["loc"]:
            what = f"{'.'.join(str(part) for part in first['loc'])}: {what}"
        raise SpecError(f"--run-spec {path}: {what}; give a run_spec.json written by schoolsurge run") from None


def with_secrets(spec: RunSpec, options: Any) -> RunSpec:
    """The spec with the secrets its file leaves out, from the process's own options."""
    secrets = {field: given(options, dest) for dest, field in SECRET_CLIENT_OPTIONS.items()}
    secrets = {field: value for field, value in secrets.items() if value is not None}
    if not secrets:
        return spec
    settings = replace(spec.client.settings, **secrets)
    return spec.model_copy(update={"client": replace(spec.client, settings=settings)})


def secret_environment(spec: RunSpec, admin_token: str | None) -> dict[str, str]:
    """The secrets of a run as the environment of its Locust (LOCUST_<OPTION>), never its command line."""
    values = {"admin_token": admin_token}
    values |= {dest: getattr(spec.client.settings, field) for dest, field in SECRET_CLIENT_OPTIONS.items()}
    return {OPTION_BY_DEST[dest].environment_variable: value for dest, value in values.items() if value}


def profile_capacity(scenario: Scenario, profile: str) -> float:
    """What the embedded platform's profile holds at a constant arrival rate, as a multiple of the scenario's
    national peak arrival rate: the lowest of its login rate over the peak login rate, its request rate over the
    peak request rate, and its sessions over the sessions a constant rate keeps open (rate x mean session)."""
    limits = NATIONAL_LIMITS[profile]
    curves = national_curves(scenario)
    peak_logins = float(curves.per_minute(curves.total_arrivals()).max())
    held = [
        limits["national_login_rate"] / peak_logins,
        limits["national_request_rate"] / float(curves.total_requests().max()),
    ]
    if limits["national_sessions"] is not None:
        held.append(limits["national_sessions"] / (peak_logins * mean_session_s(scenario)))
    return min(held)


def _sweep_settings(options: Any, command: Command) -> SweepSettings | None:
    """`schoolsurge capacity` is a sweep; plain Locust runs one when --sweep-steps is given."""
    if command is not Command.CAPACITY and given(options, "sweep_steps") is None:
        return None
    fields = {o.spec_field: given(options, o.dest) for o in options_for(command, Section.SWEEP)}
    fields.pop("expected_capacity")
    return sweep_settings({name: value for name, value in fields.items() if value is not None})


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ParameterError(f"unknown platform profile {profile!r}; choose one of {', '.join(sorted(PROFILES))}")
    return profile
