"""Reading and validating scenario files: the only I/O of the scenario package, and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from schoolsurge.errors import ScenarioError
from schoolsurge.files import open_regular
from schoolsurge.scenario.checks import problems
from schoolsurge.scenario.schema import Scenario

# Pydantic puts the tag of a tagged union in the error location (groups.0.login_time.normal.mean); people
# think of the field path without it.
UNION_TAGS = frozenset(
    {"normal", "lognormal", "empirical", "bot-flood", "capacity-loss"},
)


# The library's largest scenario is a few KB; a cap keeps a wrong, huge file from being read whole.
MAX_SCENARIO_BYTES = 1 << 20


# libyaml's safe loader when PyYAML was built with it: the same documents, several times faster to read.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _field_path(location: tuple[int | str, ...]) -> str:
    parts = [str(part) for i, part in enumerate(location) if not (i > 0 and part in UNION_TAGS)]
    return ".".join(parts) or "(top level)"


def _more(count: int) -> str:
    return f" (and {count} more problem{'s' if count > 1 else ''})" if count else ""


def parse_scenario(data: object, origin: str = "<scenario>") -> Scenario:
    """Validate already-parsed data; raises ScenarioError with a one-line message."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: expected a mapping of scenario fields at the top level")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field; check the spelling against the schema in scenarios/README.md"
        got = first.get("input")
        got_text = f" (got {got!r})" if not isinstance(got, dict | list) and got is not None else ""
        raise ScenarioError(
            f"{origin}: {_field_path(first['loc'])}: {message}{got_text}{_more(error.error_count() - 1)}"
        ) from None
    found = list(problems(scenario))
    if found:
        path, message = found[0]
        raise ScenarioError(f"{origin}: {path}: {message}{_more(len(found) - 1)}")
    return scenario


def read_scenario_text(path: Path) -> str:
    """The file's text, refused when it is not UTF-8 or larger than any scenario (a device, a wrong file)."""
    try:
        with open_regular(path, follow_links=True) as handle:  # a FIFO or a device is refused, not waited on
            raw = handle.read(MAX_SCENARIO_BYTES + 1)
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read scenario file ({error.strerror})") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(
            f"{path}: larger than {MAX_SCENARIO_BYTES // 1024} KB, which no scenario is; give a scenario YAML file"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(
            f"{path}: not UTF-8 text (byte {error.start} cannot be decoded); save the scenario as UTF-8"
        ) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    path = Path(path)
    text = read_scenario_text(path)
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ScenarioError(f"{path}: not valid YAML{where}; fix the syntax") from None
    return parse_scenario(data, str(path))
