"""One option table, one run spec: every option declared once and shown by every `--help` with the default the
table holds; a Locust started by `schoolsurge run` reads the run's options from the spec the run wrote, not from
its command line; secrets stay out of the spec and reach Locust through its environment."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from argparse import Namespace
from dataclasses import dataclass
from pathlib import Path

import pytest

from schoolsurge.cli import build_parser
from schoolsurge.errors import SpecError
from schoolsurge.models.replay import load_fraction
from schoolsurge.options import OPTIONS, Command, Section, options_for
from schoolsurge.rundir import MANIFEST, RUN_SPEC, TIMELINE
from schoolsurge.scenario import load_scenario
from schoolsurge.spec import build_spec, read_spec, spec_of, write_spec

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
PACKAGE = ROOT / "schoolsurge"
# The parser `locust -f locustfiles/surge.py` parses with (Locust prints its --help before it loads a locustfile,
# so its own --help never shows a locustfile's options): built as Locust builds it, the locustfile loaded.
LOCUST_HELP = """
from locust import argument_parser
from locust.main import merge_locustfiles_content

located = argument_parser.parse_locustfile_option(["-f", "locustfiles/surge.py"])
merge_locustfiles_content(argument_parser.get_locustfiles_locally(located))
print(argument_parser.get_parser().format_help())
"""
HELP_COMMANDS = {
    Command.RUN: [sys.executable, "-m", "schoolsurge", "run", "--help"],
    Command.CAPACITY: [sys.executable, "-m", "schoolsurge", "capacity", "--help"],
    Command.PLAN: [sys.executable, "-m", "schoolsurge", "plan", "--help"],
    Command.LOCUST: [sys.executable, "-c", LOCUST_HELP],
}
LOCUST_OWN = {"--processes", "--locustfile", "--profile"}  # Locust's own; the table's are `schoolsurge`'s only


def _help(command: Command) -> str:
    finished = subprocess.run(HELP_COMMANDS[command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return finished.stdout


def _squeezed(text: str) -> str:
    """Without whitespace: argparse wraps help lines anywhere, a hyphenated word included."""
    return "".join(text.split())


def _declared_flags(help_text: str) -> list[str]:
    """The flags the option lines of a --help declare (not the usage line), each as often as it is declared."""
    flags = []
    for line in help_text.splitlines():
        if line.startswith("  -"):
            heading = line.strip().split("  ")[0]
            flags += [word.rstrip(",") for word in heading.split() if word.startswith("--")]
    return flags


@pytest.mark.parametrize("command", list(HELP_COMMANDS), ids=lambda c: c.name.lower())
def test_every_option_shows_in_help_once_with_the_table_s_default(command: Command) -> None:
    text = _help(command)
    declared = _declared_flags(text)
    for option in options_for(command):
        if command in option.positional_in:
            assert f"  {option.dest} " in text, option.dest
            continue
        names = [option.flag] if command is Command.LOCUST else [option.flag, *option.aliases]
        for name in names:
            assert declared.count(name) == 1, f"{name} declared {declared.count(name)} times in {command.name} --help"
        assert _squeezed(option.help_text(command).replace("%%", "%")) in _squeezed(text), option.flag
        shown = option.shown_default()
        if shown is not None:
            assert _squeezed(f"(default: {shown})") in _squeezed(text), option.flag
    elsewhere = {name for o in OPTIONS if command not in o.commands for name in (o.flag, *o.aliases)}
    assert not (elsewhere - LOCUST_OWN) & set(declared), f"{command.name} --help shows options it does not take"


def test_no_help_text_names_a_default_and_no_flag_is_declared_twice() -> None:
    names = [name for option in OPTIONS for name in (option.flag, *option.aliases)]
    assert len(names) == len(set(names)), "a flag or alias declared twice in the table"
    for option in OPTIONS:
        assert "default" not in option.help.lower(), f"{option.flag}: the default belongs in `default`"
    by_hand = sorted(_flags_added_by_hand() & set(names))
    assert not by_hand, f"declared outside the option table: {by_hand}"


def _flags_added_by_hand() -> set[str]:
    """Flags given as literals to an `add_argument`-like call anywhere in the package but the reference platform
    (`schoolsurge target`: a server with options of its own, such as its accounts' --seed)."""
    flags = set()
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "platform"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")).startswith(
                "add"
            ):
                flags |= {
                    arg.value for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value)[:2] == "--"
                }
    return flags


def test_every_run_option_fills_a_field_of_the_spec() -> None:
    spec = build_spec(Namespace(scenario=str(SMOKE)), Command.CAPACITY).model_dump()
    sections = {
        Section.RUN: spec,
        Section.CLIENT: spec["client"]["settings"] | {"client": None, "options": None},
        Section.SWEEP: spec["sweep"]["settings"] | {"expected_capacity": None},
        Section.MONITORING: spec["monitoring"],
    }
    for option in OPTIONS:
        if option.section in sections:
            assert option.spec_field in sections[option.section], f"{option.flag} sets no field of the spec"


def test_the_old_sweep_spellings_are_the_new_options() -> None:
    old = ["--steps", "3", "--low", "0.5", "--high", "2", "--step-duration", "4", "--settle", "1"]
    old += ["--stop-margin", "2", "--linear", "--expected-capacity", "1.5"]
    new = ["--sweep-steps", "3", "--sweep-low", "0.5", "--sweep-high", "2", "--sweep-measure", "4"]
    new += ["--sweep-settle", "1", "--sweep-stop-margin", "2", "--sweep-linear", "--sweep-capacity", "1.5"]
    parser = build_parser()
    assert parser.parse_args(["capacity", str(SMOKE), *old]) == parser.parse_args(["capacity", str(SMOKE), *new])
    spec = build_spec(parser.parse_args(["capacity", str(SMOKE), *old]), Command.CAPACITY)
    assert spec.sweep is not None and spec.sweep.expected_capacity == 1.5
    assert (spec.sweep.settings.steps, spec.sweep.settings.low, spec.sweep.settings.linear) == (3, 0.5, True)


def test_the_spec_s_load_fraction_is_the_models() -> None:
    spec = build_spec(Namespace(scenario=str(SMOKE), speed=240), Command.LOCUST)
    replay = spec.replay(load_scenario(spec.scenario))
    assert spec.load_fraction == load_fraction(spec.scale, spec.speed) == replay.load_fraction == 240 * spec.scale


def test_the_engine_imports_nothing_of_the_report() -> None:
    """The engine writes the run directory; the report, the validity and the verdicts are the conclusion's."""
    for path in (PACKAGE / "engine").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            assert not any(m.startswith(("schoolsurge.report", "schoolsurge.conclude")) for m in modules), path


# ---- the spec file --------------------------------------------------------------------------------------------


def test_a_spec_file_keeps_no_secret_and_a_process_takes_it_from_its_options(tmp_path: Path) -> None:
    options = Namespace(scenario=str(SMOKE), sso="oidc", oidc_client_secret="s3cret-of-the-test")
    path = write_spec(tmp_path, build_spec(options, Command.RUN))
    assert path == tmp_path / RUN_SPEC and "s3cret-of-the-test" not in path.read_text()
    assert read_spec(path).client.settings.oidc_client_secret == ""
    spec = spec_of(Namespace(run_spec=str(path), oidc_client_secret="s3cret-of-the-test"))
    assert spec.client.settings.oidc_client_secret == "s3cret-of-the-test"
    assert spec.client.settings.sso == "oidc"


def test_a_spec_file_with_a_wrong_field_is_refused_naming_it(tmp_path: Path) -> None:
    path = write_spec(tmp_path, build_spec(Namespace(scenario=str(SMOKE)), Command.LOCUST))
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"scale": 2}))
    with pytest.raises(SpecError, match=r"run_spec.json: scale must be in \(0, 1\]") as refused:
        read_spec(path)
    assert "\n" not in str(refused.value)
    path.write_text(json.dumps(data | {"sweep_steps": 3}))
    with pytest.raises(SpecError, match="sweep_steps: Extra inputs are not permitted"):
        read_spec(path)


def test_run_options_beside_a_spec_are_refused(tmp_path: Path) -> None:
    path = write_spec(tmp_path, build_spec(Namespace(scenario=str(SMOKE)), Command.LOCUST))
    with pytest.raises(SpecError, match="leave out --scale"):
        spec_of(Namespace(run_spec=str(path), scale=0.5))


def test_plain_locust_takes_the_drain_limit_into_its_spec() -> None:
    """`locust -f locustfiles/surge.py --drain-limit S` (single, master or worker) reads it as `schoolsurge run`
    does."""
    from locust import argument_parser

    import schoolsurge.locustfile  # noqa: F401  (its options, on Locust's parser)

    arguments = ["-f", "locustfiles/surge.py", "--scenario", str(SMOKE), "--drain-limit", "4.5"]
    assert spec_of(argument_parser.get_parser().parse_args(arguments)).drain_limit_s == 4.5
    with pytest.raises(SystemExit):
        argument_parser.get_parser().parse_args([*arguments[:-1], "0"])


def test_locust_reads_the_secrets_from_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`schoolsurge run` hands its Locust the admin token and the OIDC client secret in LOCUST_<OPTION>."""
    from locust import argument_parser

    import schoolsurge.locustfile  # noqa: F401  (its options, on Locust's parser)

    secrets = {o.environment_variable: f"value of {o.dest}" for o in OPTIONS if o.secret}
    assert set(secrets) == {"LOCUST_ADMIN_TOKEN", "LOCUST_OIDC_CLIENT_SECRET"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    options = argument_parser.get_parser().parse_args(["-f", "locustfiles/surge.py"])
    assert (options.admin_token, options.oidc_client_secret) == ("value of admin_token", "value of oidc_client_secret")


# ---- a Locust started by `schoolsurge run` reads the spec ------------------------------------------------------

RECORDING_LOCUSTFILE = """
import sys
from pathlib import Path

from schoolsurge.locustfile import *  # noqa: F403

Path(__file__).with_name("locust_argv.json").write_text(__import__("json").dumps(sys.argv))
"""


@dataclass(frozen=True)
class HandedOver:
    """One `schoolsurge run` through RECORDING_LOCUSTFILE: the directory Locust's argv was written to, the run's."""

    locust_dir: Path
    run_dir: Path


@pytest.fixture(scope="module")
def handed_over(tmp_path_factory: pytest.TempPathFactory) -> HandedOver:
    """Smoke with a capacity-loss incident, its hour in 3 s (forced: more than the plan gives one process), with a
    seed, a late-after and a drain limit of its own: what is checked is how the run was handed over, not what it
    measured."""
    tmp_path = tmp_path_factory.mktemp("handed-over")
    locustfile = tmp_path / "recording.py"
    locustfile.write_text(RECORDING_LOCUSTFILE)
    scenario = tmp_path / "smoke-loss.yaml"
    incident = '\nincidents: [{kind: capacity-loss, at: "07:45", restored_at: "08:15", fraction: 0.5}]\n'
    scenario.write_text(SMOKE.read_text(encoding="utf-8") + incident, encoding="utf-8")
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "schoolsurge", "run", str(scenario), "--speed", "1200", "--seed", "7", "--force"]
    command += ["--late-after", "2", "--drain-limit", "9", "--locustfile", str(locustfile)]
    command += ["--reports-dir", str(reports)]
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode in (0, 4), finished.stdout[-2000:] + finished.stderr[-2000:]
    assert finished.stdout.count("Report: ") == 1, finished.stdout[-2000:]
    (run_dir,) = [path.parent for path in reports.glob(f"*/{MANIFEST}")]
    return HandedOver(tmp_path, run_dir)


def test_schoolsurge_run_hands_locust_the_spec_and_nothing_it_resolved(handed_over: HandedOver) -> None:
    argv = json.loads((handed_over.locust_dir / "locust_argv.json").read_text())
    run_dir = handed_over.run_dir
    assert argv[argv.index("--run-spec") + 1] == str(run_dir / RUN_SPEC)
    in_the_spec = {o.flag for o in OPTIONS if o.section in (Section.RUN, Section.CLIENT, Section.MONITORING)}
    assert not in_the_spec & set(argv), f"the run's options on Locust's command line: {in_the_spec & set(argv)}"
    assert "--admin-token" not in argv, "a secret on a command line"

    spec = read_spec(run_dir / RUN_SPEC)
    manifest = json.loads((run_dir / MANIFEST).read_text())
    timeline = json.loads((run_dir / TIMELINE).read_text())  # written by Locust, from what it read
    assert (spec.speed, spec.seed, spec.late_after_s, spec.drain_limit_s) == (1200, 7, 2, 9)
    assert manifest["drain_limit_s"] == 9  # written by Locust's engine, from what it read
    assert (manifest["scale"], manifest["speed"], manifest["seed"]) == (spec.scale, spec.speed, spec.seed)
    assert (timeline["scale"], timeline["speed"]) == (spec.scale, spec.speed)
    assert (manifest["scenario_file"], manifest["profile"], manifest["sso"]) == (
        str(spec.scenario),
        spec.profile,
        spec.client.settings.sso,
    )
    assert manifest["processes"] == 1 and spec.processes is None and spec.target is None


def test_the_embedded_platform_s_admin_token_reaches_locust_and_its_incidents_run(handed_over: HandedOver) -> None:
    """The token goes to Locust in its environment (never a file or its command line), and Locust reads it there:
    a capacity-loss incident of a `schoolsurge run` is applied, not skipped for want of a token."""
    text = (handed_over.run_dir / "locust.log").read_text()
    assert "incidents skipped" not in text
    assert "capacity lost 50% at run second" in text and "(applied)" in text, text[-3000:]
