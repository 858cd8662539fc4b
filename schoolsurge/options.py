"""The option table: every option of a run, declared once, and the parsers built from it.

`schoolsurge run`, `schoolsurge capacity`, `schoolsurge plan` and the locustfile (`locust -f locustfiles/surge.py`,
through Locust's init_command_line_parser) all add their options with `add_options(parser, command)`. An option
says which commands have it, its type (which checks the value as it is parsed: one line, exit 2), its default and
its help; `--help` prints the default from here, so no help text names one. An option's default is its value
when it is not given: a value (the parser's default), or `default_text` when another place resolves it (the
scenario's scale, a sweep's plan, ClientSettings, SweepSettings). What the options give becomes the run spec
(spec.py), which is all a Locust process started by `schoolsurge run` reads (`--run-spec`).

To add an option: one `Option` below (its section says which part of the spec it fills: a RUN option is a field
of RunSpec, a CLIENT one a ClientSettings field, a SWEEP one a SweepSettings field, a MONITORING one a field of
MonitoringSpec); then the field it fills, and the code that uses it. tests/test_options.py checks the table
against every `--help` and against the spec.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Flag, StrEnum, auto
from pathlib import Path
from typing import Any

from schoolsurge.clients.base import ClientSettings, body_bytes
from schoolsurge.clients.cas import VALIDATIONS as CAS_VALIDATIONS
from schoolsurge.clients.journey import JOURNEY_MAP_HELP, journey_map_argument
from schoolsurge.clients.oidc import TOKEN_AUTH_METHODS
from schoolsurge.clients.oidc import VALIDATIONS as OIDC_VALIDATIONS
from schoolsurge.clients.web import DEFAULT_JOURNEY_MAP
from schoolsurge.exit_status import EXIT_SLO_BREACHED
from schoolsurge.models.sweep import (
    DEFAULT_HIGH_OVER_CAPACITY,
    DEFAULT_HIGH_UNKNOWN,
    DEFAULT_SPAN,
    SweepSettings,
)
from schoolsurge.monitoring_options import metrics_port, target_metrics_url
from schoolsurge.parameters import (
    DRAIN_LIMIT_S,
    DROP_AFTER_S,
    LATE_AFTER_S,
    drain_seconds,
    number_at_least_zero,
    positive_number,
    process_count,
    scale_fraction,
    seconds_at_least_zero,
    seed_number,
    speed_factor,
)
from schoolsurge.platform.settings import PROFILES, SSO_PROTOCOLS
from schoolsurge.sweep_options import refine_steps, refine_within, stop_margin, sweep_steps

DEFAULT_SCENARIO = "scenarios/first-day-2021.yaml"
DEFAULT_REPORTS_DIR = Path("reports")
PROFILE_ENV = "SCHOOLSURGE_PROFILE"  # overrides the scenario's profile, as for `schoolsurge target`
CLIENT_DEFAULTS = ClientSettings()
SWEEP_DEFAULTS = SweepSettings()


class Command(Flag):
    """Where an option is parsed."""

    RUN = auto()  # schoolsurge run
    CAPACITY = auto()  # schoolsurge capacity
    PLAN = auto()  # schoolsurge plan
    LOCUST = auto()  # locust -f locustfiles/surge.py (every Locust process: single, master, workers)


STARTS = Command.RUN | Command.CAPACITY  # the commands that start Locust themselves
RUNS = STARTS | Command.LOCUST  # every way a run starts


class Section(StrEnum):
    """Which part of the run an option sets."""

    RUN = "run"  # RunSpec: what is replayed, where, how fast
    CLIENT = "client"  # ClientSettings and the client class
    SWEEP = "sweep"  # SweepSettings: a capacity sweep instead of the morning
    MONITORING = "monitoring"  # MonitoringSpec: the run's /metrics and the target's
    START = "start"  # how `schoolsurge` starts and ends the run (never in the spec)
    PROCESS = "process"  # a Locust process's own (where its spec and run directory are, secrets)


@dataclass(frozen=True)
class Option:
    flag: str
    help: str  # what it is; never its default (help_text adds it from `default` or `default_text`)
    commands: Command
    section: Section
    field: str = ""  # the field it sets in its section's part of the spec (ClientSettings...): "" = its dest
    type: Callable[[str], Any] | None = None  # converts and checks the text (argparse's `type`)
    default: Any = None  # its value when not given
    default_text: str | None = None  # the default, said in words, when another place resolves it
    choices: tuple[str, ...] | None = None
    action: str | None = None  # "store_true", "append"
    aliases: tuple[str, ...] = ()  # older spellings, still accepted by `schoolsurge` (not by Locust)
    positional_in: Command = Command(0)  # where it is given without its flag (the scenario)
    web_ui: bool = False  # shown in Locust's web UI form
    # Never written into a file or onto a command line: `schoolsurge run` hands it to Locust in its environment
    # (LOCUST_<NAME>, which Locust's parser reads for it).
    secret: bool = False

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def spec_field(self) -> str:
        return self.field or self.dest

    @property
    def environment_variable(self) -> str:
        """Where Locust reads the option from the environment (its parser's auto_env_var_prefix)."""
        return f"LOCUST_{self.dest.upper()}"

    def shown_default(self) -> str | None:
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.action == "store_true":
            return None
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def help_text(self, command: Command) -> str:
        shown = None if command in self.positional_in else self.shown_default()
        return self.help if shown is None else f"{self.help} (default: {shown})"


def _client(flag: str, field: str, help: str, **more: Any) -> Option:
    return Option(flag, help, RUNS, Section.CLIENT, field=field, **more)


def _sweep(flag: str, alias: str | None, field: str, help: str, **more: Any) -> Option:
    aliases = () if alias is None else (alias,)
    return Option(flag, help, Command.CAPACITY | Command.LOCUST, Section.SWEEP, field=field, aliases=aliases, **more)


def _monitoring(flag: str, help: str, **more: Any) -> Option:
    return Option(flag, help, RUNS, Section.MONITORING, **more)


OPTIONS: tuple[Option, ...] = (
    # ---- the run: what is replayed, where, how fast ----
    Option(
        "--scenario",
        "scenario file, e.g. scenarios/smoke.yaml",
        RUNS | Command.PLAN,
        Section.RUN,
        default=DEFAULT_SCENARIO,
        positional_in=STARTS | Command.PLAN,
        web_ui=True,
    ),
    Option(
        "--target",
        "base URL of the platform",
        STARTS,
        Section.RUN,
        default_text="start the embedded reference one",
    ),
    Option(
        "--profile",
        "capacity profile of the embedded platform",
        STARTS,
        Section.RUN,
        choices=tuple(sorted(PROFILES)),
        default_text=f"${PROFILE_ENV}, else the scenario's",
    ),
    Option(
        "--scale",
        "fraction of people simulated",
        RUNS | Command.PLAN,
        Section.RUN,
        type=scale_fraction,
        default_text="the scenario's; a capacity sweep's from its plan",
        web_ui=True,
    ),
    Option(
        "--speed",
        "time compression, scenario seconds per run second",
        RUNS | Command.PLAN,
        Section.RUN,
        type=speed_factor,
        default_text="the scenario's; a capacity sweep's from its plan",
        web_ui=True,
    ),
    Option(
        "--seed",
        "seed of the schedule, the accounts and the choices",
        RUNS,
        Section.RUN,
        type=seed_number,
        default_text="the scenario's",
        web_ui=True,
    ),
    Option(
        "--late-after",
        "start delay (s) counted as a late arrival",
        RUNS,
        Section.RUN,
        field="late_after_s",
        type=seconds_at_least_zero,
        default=LATE_AFTER_S,
        web_ui=True,
    ),
    Option(
        "--drop-after",
        "start delay (s) past which an arrival is dropped",
        RUNS,
        Section.RUN,
        field="drop_after_s",
        type=seconds_at_least_zero,
        default=DROP_AFTER_S,
        web_ui=True,
    ),
    Option(
        "--drain-limit",
        "seconds after the window the last sessions may take; requests still unanswered then fail",
        RUNS,
        Section.RUN,
        field="drain_limit_s",
        type=drain_seconds,
        default=DRAIN_LIMIT_S,
        web_ui=True,
    ),
    Option(
        "--processes",
        "Locust worker processes",
        STARTS,
        Section.RUN,
        type=process_count,
        default_text="one process",
    ),
    Option(
        "--accounts",
        "CSV of test accounts role,username,password (another platform)",
        RUNS,
        Section.RUN,
        type=Path,
        default_text="made from the seed, as the embedded platform's",
        web_ui=True,
    ),
    Option(
        "--allow-host",
        "a non-loopback host you own and explicitly allow to be loaded",
        RUNS,
        Section.RUN,
        web_ui=True,
    ),
    # ---- how schoolsurge starts and ends the run ----
    Option(
        "--locustfile",
        "a locustfile of your own (it imports schoolsurge.locustfile)",
        STARTS,
        Section.START,
        type=Path,
        default_text="the surge locustfile",
    ),
    Option("--reports-dir", "where run directories go", STARTS, Section.START, type=Path, default=DEFAULT_REPORTS_DIR),
    Option(
        "--force",
        "run even when the plan says this machine cannot hold it",
        STARTS,
        Section.START,
        action="store_true",
        default=False,
    ),
    Option(
        "--fail-on-slo",
        f"exit {EXIT_SLO_BREACHED} if an SLO breaks",
        Command.RUN,
        Section.START,
        action="store_true",
        default=False,
    ),
    Option(
        "--junit",
        "write the SLO verdicts and the run's validity as JUnit XML here",
        Command.RUN,
        Section.START,
        type=Path,
    ),
    # ---- a Locust process's own ----
    Option(
        "--run-spec",
        "the run spec `schoolsurge run` wrote (run_spec.json): the run's options, in place of --scenario, "
        "--scale and the others",
        Command.LOCUST,
        Section.PROCESS,
    ),
    Option(
        "--run-dir",
        "where the run's files go",
        Command.LOCUST,
        Section.PROCESS,
        default_text="the --run-spec's directory, else reports/<UTC time>-<scenario>-locust/",
    ),
    Option(
        "--admin-token",
        "the platform's admin token (capacity-loss incidents)",
        Command.LOCUST,
        Section.PROCESS,
        web_ui=True,
        secret=True,
    ),
    # ---- the platform client ----
    _client(
        "--sso",
        "sso",
        "the platform's single sign-on: the protocol of the embedded platform and of its client",
        choices=SSO_PROTOCOLS,
        default_text=CLIENT_DEFAULTS.sso,
    ),
    _client(
        "--client",
        "client",
        "platform client class, package.module:Class",
        default_text="the embedded platform's client for --sso (schoolsurge.clients.reference)",
    ),
    _client("--cas-url", "cas_url", "CAS base URL", default_text="TARGET/cas"),
    _client(
        "--service-url", "service_url", "CAS service URL people log in to", default_text="TARGET/ent/auth/callback"
    ),
    _client(
        "--home-url",
        "home_url",
        "the page CasClient reads as its dashboard",
        default_text="the CAS login page",
    ),
    _client(
        "--cas-username-field",
        "username_field",
        "name of the login form's username field",
        default_text=CLIENT_DEFAULTS.username_field or "read from the form",
    ),
    _client(
        "--cas-password-field",
        "password_field",
        "name of the login form's password field",
        default_text=CLIENT_DEFAULTS.password_field or "read from the form",
    ),
    _client(
        "--cas-logout-method",
        "logout_method",
        "HTTP method of CAS logout",
        choices=("GET", "POST"),
        default_text=CLIENT_DEFAULTS.logout_method,
    ),
    _client(
        "--cas-validation",
        "validation",
        "who redeems the service ticket",
        choices=CAS_VALIDATIONS,
        default_text=CLIENT_DEFAULTS.validation,
    ),
    _client("--oidc-issuer", "oidc_issuer", "OpenID Provider's issuer URL", default_text="TARGET/oidc"),
    _client(
        "--oidc-login-url",
        "oidc_login_url",
        "where the service starts a login",
        default_text="TARGET/ent/auth/oidc/login",
    ),
    _client("--oidc-client-id", "oidc_client_id", "back channel: the client id", default_text="the embedded app's"),
    _client(
        "--oidc-client-secret",
        "oidc_client_secret",
        "back channel: the client secret",
        default_text="none: a public client",
        secret=True,
    ),
    _client("--oidc-redirect-uri", "oidc_redirect_uri", "back channel: the client's registered redirect URI"),
    _client("--oidc-scopes", "oidc_scopes", "back channel: scopes asked for", default_text=CLIENT_DEFAULTS.oidc_scopes),
    _client(
        "--oidc-username-field", "oidc_username_field", "login form's username field", default_text="read from the form"
    ),
    _client(
        "--oidc-password-field", "oidc_password_field", "login form's password field", default_text="read from the form"
    ),
    _client(
        "--oidc-token-auth",
        "oidc_token_auth",
        "back channel: client authentication at the token endpoint",
        choices=TOKEN_AUTH_METHODS,
        default_text="client_secret_basic with a secret",
    ),
    _client(
        "--oidc-validation",
        "oidc_validation",
        "who redeems the code",
        choices=OIDC_VALIDATIONS,
        default_text=CLIENT_DEFAULTS.oidc_validation,
    ),
    _client(
        "--max-body-bytes",
        "max_body_bytes",
        "largest response body a request reads; a larger one is a failure",
        type=body_bytes,
        default_text=f"{CLIENT_DEFAULTS.max_body_bytes} (10 MiB)",
    ),
    _client(
        "--client-option",
        "options",
        "KEY=VALUE for your own client (repeatable)",
        action="append",
    ),
    _client(
        "--journey-map", "journey_map", JOURNEY_MAP_HELP, type=journey_map_argument, default_text=DEFAULT_JOURNEY_MAP
    ),
    # ---- a capacity sweep (schoolsurge capacity; plain locust: a sweep when --sweep-steps is given) ----
    _sweep("--sweep-steps", "--steps", "steps", "load steps", type=sweep_steps, default_text=f"{SWEEP_DEFAULTS.steps}"),
    _sweep(
        "--sweep-low",
        "--low",
        "low",
        "lowest step, x the scenario's national peak arrival rate",
        type=positive_number,
        default_text=f"the highest / {DEFAULT_SPAN:g}",
    ),
    _sweep(
        "--sweep-high",
        "--high",
        "high",
        "highest step, x the scenario's national peak arrival rate",
        type=positive_number,
        default_text=f"{DEFAULT_HIGH_OVER_CAPACITY:g}x the expected capacity, else {DEFAULT_HIGH_UNKNOWN:g}x the peak",
    ),
    _sweep(
        "--sweep-measure",
        "--step-duration",
        "measure_s",
        "seconds measured per step, once settled",
        type=positive_number,
        default_text=f"{SWEEP_DEFAULTS.measure_s:g}",
    ),
    _sweep(
        "--sweep-settle",
        "--settle",
        "settle_sessions",
        "settling time per step, in mean session lengths at the run's speed",
        type=number_at_least_zero,
        default_text=f"{SWEEP_DEFAULTS.settle_sessions:g}",
    ),
    _sweep(
        "--sweep-stop-margin",
        "--stop-margin",
        "stop_margin",
        "stop once a step breaches an objective by this factor",
        type=stop_margin,
        default_text=f"{SWEEP_DEFAULTS.stop_margin:g}",
    ),
    _sweep(
        "--sweep-refine-within",
        None,
        "refine_within",
        "bisect near the break until the capacity range (broke - held) / held is within this fraction",
        type=refine_within,
        default_text=f"{SWEEP_DEFAULTS.refine_within:g}",
    ),
    _sweep(
        "--sweep-refine-steps",
        None,
        "refine_steps",
        "at most this many refinement steps (the refinement's budget; 0: none)",
        type=refine_steps,
        default_text=f"{SWEEP_DEFAULTS.refine_steps}",
    ),
    _sweep(
        "--sweep-linear",
        "--linear",
        "linear",
        "linear steps",
        action="store_true",
        default=False,
        default_text="geometric",
    ),
    _sweep(
        "--sweep-capacity",
        "--expected-capacity",
        "expected_capacity",
        "the target's expected capacity, x the national peak; sets the highest step",
        type=positive_number,
        default_text="the embedded platform's profile's; unknown for another target",
    ),
    # ---- monitoring ----
    _monitoring(
        "--metrics-port",
        "port of the run's Prometheus /metrics: 0 takes a free one (the manifest's metrics_url), off serves none",
        type=metrics_port,
        default=0,
    ),
    _monitoring("--metrics-host", "address /metrics listens on", default="127.0.0.1"),
    _monitoring(
        "--metrics-linger",
        "seconds /metrics keeps serving the final figures after the results are written",
        type=seconds_at_least_zero,
        default=0.0,
    ),
    _monitoring(
        "--target-metrics",
        "the target's Prometheus endpoint, scraped every 5 s; off: not scraped",
        type=target_metrics_url,
        default_text="the target's /metrics",
    ),
)


OPTION_BY_DEST = {option.dest: option for option in OPTIONS}


def options_for(command: Command, section: Section | None = None) -> Iterator[Option]:
    """The options of a command (of one section), in the table's order."""
    return (o for o in OPTIONS if command in o.commands and (section is None or o.section is section))


def add_options(parser: Any, command: Command) -> None:
    """Add the command's options to an argparse parser (Locust's takes its web UI keywords too)."""
    for option in options_for(command):
        kwargs = _parsing(option) | {"help": option.help_text(command).replace("%", "%%")}
        if command in option.positional_in:
            parser.add_argument(option.dest, **kwargs)
            continue
        names = [option.flag, *option.aliases]
        if command is Command.LOCUST:
            names = [option.flag]
            kwargs |= {"include_in_web_ui": option.web_ui, "is_secret": option.secret}
            if option.secret:
                kwargs["env_var"] = option.environment_variable
        parser.add_argument(*names, dest=option.dest, default=option.default, **kwargs)


def parse_section_arguments(arguments: list[str], command: Command, *sections: Section) -> argparse.Namespace:
    """Parse command-line arguments of some sections only (a RunRequest's client and monitoring arguments);
    argparse.ArgumentError names one that is not of those sections, or a value its option refuses."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    for option in options_for(command):
        if option.section in sections:
            parser.add_argument(option.flag, dest=option.dest, default=option.default, **_parsing(option))
    options, unknown = parser.parse_known_args(arguments)
    if unknown:
        raise argparse.ArgumentError(None, f"not {' or '.join(sections)} options: {' '.join(unknown)}")
    return options


def given(options: Any, dest: str) -> Any:
    """An option's value in parsed options; its default when they lack it (a library caller's Namespace may hold
    only what it sets)."""
    return getattr(options, dest, OPTION_BY_DEST[dest].default)


def _parsing(option: Option) -> dict[str, Any]:
    return {name: getattr(option, name) for name in ("type", "choices", "action") if getattr(option, name) is not None}
