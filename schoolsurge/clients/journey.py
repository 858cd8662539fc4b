"""Journey maps: a platform's pages described in one YAML file, so WebClient (web.py) walks an ENT without code.

A map names, for each persona step (a PlatformClient method: dashboard, homework, join_virtual_class...), the
request that carries it out: method, URL template, query, headers, body, the statuses that mean success, and
what to read from the answer. A step the map leaves out is not supported: personas skip it, counted in
sessions.csv's `steps_not_supported`. The format, field by field, is docs/your-platform.md#journey-map.

    steps:
      dashboard:
        url: /api/dashboard                      # relative to the target, or absolute
        read:
          class_ids: {json: "$.classes[*].id"}   # JSONPath (jsonpath-ng, with filters), or {regex: ...}
      join_virtual_class:
        method: POST
        url: /api/virtual-classes/{virtual_class_id}/join
        read: {status: {json: $.status}}

Templates (`{name}`, `{{` for a brace) take the person's values (username, role, group, index), the step's
arguments (virtual_class_id, child_id...) and any value read by an earlier step of the session; nothing else is
evaluated (no attribute, no index, no expression). A value inside a longer URL is percent-encoded; a URL that
is one placeholder takes its value as it is (a link read from a page). A query, header, form or JSON entry
whose template names a value the session does not have (a parent's child_id on a pupil's page) is left out;
a step whose URL needs one is not supported for that person.

Maps are validated whole before a run starts: `load_journey_map` raises ClientError naming the file, the step
and the field (exit 2). Maps shipped with schoolsurge (clients/maps/) are named by their file's stem.
"""

from __future__ import annotations

import argparse
import functools
import re
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import yaml
from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as parse_json_path
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schoolsurge.errors import ClientError
from schoolsurge.files import open_regular

__all__ = [
    "MAPS_DIRECTORY",
    "PERSON_VALUES",
    "STEPS",
    "JOURNEY_MAP_HELP",
    "JourneyMap",
    "Read",
    "Request",
    "Template",
    "journey_map_argument",
    "load_journey_map",
    "shipped_maps",
]

MAPS_DIRECTORY = Path(__file__).resolve().parent / "maps"
MAX_MAP_BYTES = 1 << 20  # a map is a few KB; a cap keeps a wrong, huge file from being read whole
PERSON_VALUES = ("username", "role", "group", "index")
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
JOURNEY_MAP_HELP = "WebClient's pages: a journey map YAML file, or a shipped map (embedded, cas-ent)"


# ---- what each step takes and gives ------------------------------------------------------------------------

REQUIRED = object()  # a record field without a default


def _flag(value: object) -> bool:
    """A value read as yes or no: absent, null, false, 0, "" or "false"/"no"/"0" are no."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "null", "none")
    return bool(value)


@dataclass(frozen=True)
class Result:
    """A value a step gives back to the persona, read from the answer under this name."""

    kind: Literal["value", "list", "records"]
    convert: Callable[[Any], Any] = str
    default: Any = None  # when the map does not read it
    required: bool = False  # the step cannot give anything without it: the map must read it
    fields: Mapping[str, tuple[Callable[[Any], Any], Any]] = field(default_factory=dict)  # records: (convert, default)


VIRTUAL_CLASS_FIELDS = {"class_id": (int, REQUIRED), "id": (int, REQUIRED)}
HOMEWORK_FIELDS = {
    "id": (int, REQUIRED),
    "class_id": (int, 0),
    "subject": (str, ""),
    "due": (str, ""),
    "submitted": (_flag, False),
}
NEW_ID = Result("value", int, required=True)


def _as_read(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Step:
    """A persona step: its name in the statistics, the arguments its templates may name, what it gives back."""

    name: str
    arguments: tuple[str, ...] = ()
    results: Mapping[str, Result] = field(default_factory=dict)


# Keys are PlatformClient's methods (clients/base.py); names are the statistics rows ReferencePages writes.
STEPS: dict[str, Step] = {
    "dashboard": Step(
        "dashboard",
        (),
        {
            "role": Result("value", str),
            "class_ids": Result("list", int),
            "child_ids": Result("list", int),
            "selected_child": Result("value", int),
            "open_virtual_classes": Result("records", fields=VIRTUAL_CLASS_FIELDS),
            "waiting_virtual_classes": Result("records", fields=VIRTUAL_CLASS_FIELDS),
        },
    ),
    "timetable": Step("timetable", ("child_id",)),
    "homework": Step("homework", ("child_id",), {"homework": Result("records", fields=HOMEWORK_FIELDS)}),
    "messages": Step("messages", (), {"messages": Result("list", _as_read)}),
    "submit_homework": Step("homework: submit", ("homework_id", "text"), {"id": NEW_ID}),
    "classes": Step("classes", (), {"class_ids": Result("list", int)}),
    "post_homework": Step("homework: post", ("class_id", "subject", "due", "text"), {"id": NEW_ID}),
    "schedule_virtual_class": Step("virtual class: create", ("class_id", "title"), {"id": NEW_ID}),
    "open_virtual_class": Step("virtual class: open", ("virtual_class_id",)),
    "join_virtual_class": Step(
        "virtual class: join", ("virtual_class_id",), {"status": Result("value", str, "joined")}
    ),
    "heartbeat": Step("virtual class: heartbeat", ("virtual_class_id",), {"status": Result("value", str, "open")}),
    "leave_virtual_class": Step("virtual class: leave", ("virtual_class_id",)),
    "participants": Step(
        "virtual class: participants", ("virtual_class_id",), {"participants": Result("list", _as_read)}
    ),
    "children": Step("children", (), {"child_ids": Result("list", int)}),
    "switch_child": Step("children: switch", ("child_id",)),
    "logout": Step("logout"),
}


# ---- templates ------------------------------------------------------------------------------------------------


class Template:
    """`{name}` placeholders in literal text (`{{`, `}}` for braces). Parsed by string.Formatter, rendered by
    concatenation: a name is looked up, never evaluated."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as error:
            raise ValueError(f"{text!r}: {error} (write {{{{ and }}}} for braces)") from None
        for literal, name, spec, conversion in parsed:
            if name is not None and (not name.isidentifier() or spec or conversion):
                raise ValueError(f"{text!r}: {{{name}}} is not a placeholder: write {{name}}, a plain name")
            self.parts.append((literal, name))
        self.names = frozenset(name for _, name in self.parts if name)
        # One placeholder and nothing else: rendered as the value itself (a link read from a page, a number).
        self.whole = len(self.parts) == 1 and not self.parts[0][0] and self.parts[0][1] is not None

    def render(self, values: Mapping[str, Any], encode: Callable[[str], str] = str) -> str | None:
        """The text with each placeholder's value (through `encode`), or None when a value is absent."""
        pieces = []
        for literal, name in self.parts:
            pieces.append(literal)
            if name is not None:
                value = values.get(name)
                if value is None:
                    return None
                pieces.append(encode(str(value)))
        return "".join(pieces)


@functools.lru_cache(maxsize=1024)
def template(text: str) -> Template:
    return Template(text)


@functools.lru_cache(maxsize=1024)
def json_path(text: str) -> JSONPath:
    try:
        return parse_json_path(text)
    except Exception as error:  # jsonpath-ng raises its own errors, and a few of Python's, on a bad path
        raise ValueError(f"{text!r} is not a JSONPath ({error})") from None


def url_encoded(text: str) -> str:
    return quote(text, safe="")


def rendered(value: Any, values: Mapping[str, Any]) -> Any:
    """A JSON body with its string leaves rendered: a leaf that is one placeholder keeps its value's type (a
    number stays a number); an entry naming an absent value is left out (None for the whole body)."""
    if isinstance(value, str):
        text = template(value)
        if text.whole:
            return values.get(next(iter(text.names)))
        return text.render(values)
    if isinstance(value, dict):
        entries = ((key, rendered(item, values)) for key, item in value.items())
        return {key: item for key, item in entries if item is not None}
    if isinstance(value, list):
        return [item for item in (rendered(item, values) for item in value) if item is not None]
    return value


# ---- reading answers ------------------------------------------------------------------------------------------


class ReadFailed(ValueError):
    """An answer that does not hold what the map says to read (the message names the read)."""


def values_read(request: Request, step: Step, text: str, body: Any) -> dict[str, Any]:
    """What `request.read` finds in an answer (its text, and its JSON body or None), converted for the step's
    results; ReadFailed when a single value matches nothing (unless optional) or does not convert."""
    values: dict[str, Any] = {}
    for name, reading in request.read.items():
        if reading.json_path is not None and body is None:
            raise ReadFailed(f"read {name}: the answer is not JSON")
        found = reading.matches(text, body)
        result = step.results.get(name, Result("value", _as_read))
        try:
            if result.kind == "list":
                values[name] = [result.convert(value) for value in found if value is not None]
            elif result.kind == "records":
                values[name] = [_record(value, reading, result) for value in found]
            elif found and found[0] is not None:
                values[name] = result.convert(found[0])
            elif not found and not reading.optional:
                raise ReadFailed(f"read {name}: {reading.json_path or reading.regex} matched nothing")
        except (TypeError, ValueError) as error:
            if isinstance(error, ReadFailed):
                raise
            raise ReadFailed(f"read {name}: {error}") from None
    return values


def _record(match: Any, reading: Read, result: Result) -> dict[str, Any]:
    """One record of a match: a JSON object (its keys, or `fields` paths within it), or a regex's named groups."""
    if not isinstance(match, dict):
        raise ValueError(f"expected an object per match, got {type(match).__name__}")
    record: dict[str, Any] = {}
    for name, (convert, default) in result.fields.items():
        if reading.fields is not None and name in reading.fields:
            found = [item.value for item in json_path(reading.fields[name]).find(match)]
            value = found[0] if found else None
        else:
            value = match.get(name)
        if value is None and default is REQUIRED:
            raise ValueError(f"a match has no {name}")
        record[name] = default if value is None else convert(value)
    return record


# ---- the file's schema ------------------------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Read(Strict):
    """What to read from an answer: all matches of a JSONPath in its JSON body, or of a regular expression in
    its text (group 1, else the whole match; records: the named groups)."""

    json_path: str | None = Field(None, alias="json", min_length=1)
    regex: str | None = Field(None, min_length=1)
    fields: dict[str, str] | None = None  # records read by JSONPath: field -> path within each match
    optional: bool = False  # a single value that matches nothing is absent, not a failure

    @field_validator("json_path")
    @classmethod
    def _json_path_compiles(cls, text: str | None) -> str | None:
        if text is not None:
            json_path(text)
        return text

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                re.compile(text)
            except re.error as error:
                raise ValueError(f"{text!r} is not a regular expression ({error})") from None
        return text

    @field_validator("fields")
    @classmethod
    def _field_paths_compile(cls, fields: dict[str, str] | None) -> dict[str, str] | None:
        for path in (fields or {}).values():
            json_path(path)
        return fields

    @model_validator(mode="after")
    def _one_source(self) -> Read:
        if (self.json_path is None) == (self.regex is None):
            raise ValueError("give one of json (a JSONPath) or regex")
        if self.fields is not None and self.regex is not None:
            raise ValueError("fields go with json; a regex names its fields by named groups, (?P<id>...)")
        return self

    def matches(self, text: str, body: Any) -> list[Any]:
        """Every match: JSON values, or a regex's group 1 (whole match without groups; dicts of named groups)."""
        if self.json_path is not None:
            return [match.value for match in json_path(self.json_path).find(body)]
        pattern = re.compile(self.regex or "")
        if pattern.groupindex:
            return [found.groupdict() for found in pattern.finditer(text)]
        return [found.group(1 if pattern.groups else 0) for found in pattern.finditer(text)]


class Request(Strict):
    """One HTTP request of a step."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=1)
    query: dict[str, str | int] = {}
    headers: dict[str, str] = {}
    json_body: Any = Field(None, alias="json")
    form: dict[str, str | int] | None = None
    expect: int | list[int] | None = None  # statuses that mean success; default: any 2xx
    accept: dict[int, dict[str, Any]] = {}  # other statuses that are no failure, with the results they mean
    read: dict[str, Read] = {}
    name: str | None = Field(None, min_length=1)  # the statistics row (default: the step's)
    follow_redirects: bool = True

    @field_validator("expect")
    @classmethod
    def _statuses(cls, expect: int | list[int] | None) -> int | list[int] | None:
        for status in [expect] if isinstance(expect, int) else expect or []:
            if not 100 <= status <= 599:
                raise ValueError(f"{status} is not an HTTP status")
        return expect

    @model_validator(mode="after")
    def _checked(self) -> Request:
        if self.json_body is not None and self.form is not None:
            raise ValueError("give one body: json or form")
        for status in self.accept:
            if not 100 <= status <= 599:
                raise ValueError(f"accept: {status} is not an HTTP status")
        for name in self.read:
            if not name.isidentifier():
                raise ValueError(f"read: {name!r} is not a name templates can use (letters, digits, _)")
        return self

    def expects(self, status: int) -> bool:
        if self.expect is None:
            return 200 <= status < 300
        return status in ([self.expect] if isinstance(self.expect, int) else self.expect)

    def templates(self) -> Iterator[tuple[str, str]]:
        """(field path, template text) of every template of the request."""
        yield "url", self.url
        for key, value in self.query.items():
            yield f"query.{key}", str(value)
        for key, value in self.headers.items():
            yield f"headers.{key}", value
        for key, value in (self.form or {}).items():
            yield f"form.{key}", str(value)
        yield from _json_strings(self.json_body, "json")


def _json_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _json_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_strings(item, f"{path}.{index}")


class JourneyMap(Strict):
    """A platform's pages: each persona step's request(s), in order."""

    description: str = ""
    steps: dict[str, list[Request]]  # a step of one request may be written as that request alone

    @field_validator("steps", mode="before")
    @classmethod
    def _one_request_as_a_list(cls, steps: object) -> object:
        if isinstance(steps, dict):
            return {name: [request] if isinstance(request, dict) else request for name, request in steps.items()}
        return steps

    def requests(self, step: str) -> list[Request]:
        """The requests of a step ([] when the map leaves it out)."""
        return self.steps.get(step, [])

    def read_names(self) -> frozenset[str]:
        """Every name any step reads: the session's values templates may use."""
        return frozenset(name for step in self.steps for request in self.requests(step) for name in request.read)


# ---- loading and checking ---------------------------------------------------------------------------------------


def shipped_maps() -> dict[str, Path]:
    """The maps shipped with schoolsurge, by name (the file's stem)."""
    return {path.stem: path for path in sorted(MAPS_DIRECTORY.glob("*.yaml"))}


def journey_map_argument(text: str) -> str:
    """--journey-map: a shipped map's name or a map file, validated whole; returns the name, or the file's
    absolute path (the run's Locust processes may start elsewhere). argparse shows the message in one line."""
    try:
        load_journey_map(text)
    except ClientError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text if text in shipped_maps() else str(Path(text).resolve())


def load_journey_map(spec: str) -> JourneyMap:
    """The map a shipped name or a file names, validated; ClientError names the file, the step and the field."""
    shipped = shipped_maps().get(spec)
    return _load(shipped or Path(spec).resolve())


@functools.lru_cache(maxsize=16)
def _load(path: Path) -> JourneyMap:
    try:
        with open_regular(path, follow_links=True) as handle:  # a FIFO or a device is refused, not waited on
            raw = handle.read(MAX_MAP_BYTES + 1)
    except OSError as error:
        known = ", ".join(shipped_maps())
        raise ClientError(
            f"{path}: cannot read journey map ({error.strerror}); give a file or one of: {known}"
        ) from None
    if len(raw) > MAX_MAP_BYTES:
        raise ClientError(f"{path}: larger than {MAX_MAP_BYTES // 1024} KB, which no journey map is")
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=SAFE_LOADER)
    except UnicodeDecodeError:
        raise ClientError(f"{path}: not UTF-8 text; save the journey map as UTF-8") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ClientError(f"{path}: not valid YAML{where}; fix the syntax") from None
    return parse_journey_map(data, str(path))


def parse_journey_map(data: object, origin: str = "<journey map>") -> JourneyMap:
    """Validate already-parsed data; ClientError in one line: the origin, the field path, what is wrong."""
    if not isinstance(data, dict):
        raise ClientError(f"{origin}: expected a mapping with `steps` at the top level")
    try:
        journey = JourneyMap.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field; see docs/your-platform.md#journey-map"
        location = [str(part) for part in _written(first["loc"], data)]
        raise ClientError(f"{origin}: {'.'.join(location) or '(top level)'}: {message}{_more(error)}") from None
    for path, message in problems(journey, data["steps"]):
        raise ClientError(f"{origin}: {path}: {message}")
    return journey


def _written(location: tuple[int | str, ...], data: dict[Any, Any]) -> tuple[int | str, ...]:
    """An error's location as the file writes it: a step of one request has no request index."""
    steps = data.get("steps")
    one_request = isinstance(steps, dict) and len(location) > 2 and isinstance(steps.get(location[1]), dict)
    if location[:1] == ("steps",) and one_request and location[2] == 0:
        return location[:2] + location[3:]
    return location


def _more(error: ValidationError) -> str:
    count = error.error_count() - 1
    return f" (and {count} more problem{'s' if count > 1 else ''})" if count else ""


def problems(journey: JourneyMap, written: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """What the schema alone cannot see: unknown steps, results a step must read, names no template can have."""
    session_values = journey.read_names()
    for step_name in journey.steps:
        step = STEPS.get(step_name)
        if step is None:
            yield f"steps.{step_name}", f"not a step; steps are: {', '.join(STEPS)}"
            continue
        requests = journey.requests(step_name)
        if not requests:
            yield f"steps.{step_name}", "no request; leave the step out instead"
        known = set(PERSON_VALUES) | set(step.arguments) | session_values
        read = {name for request in requests for name in request.read}
        for index, request in enumerate(requests):
            where = f"steps.{step_name}" + (f".{index}" if isinstance(written.get(step_name), list) else "")
            for path, text in request.templates():
                try:
                    names = template(text).names
                except ValueError as error:
                    yield f"{where}.{path}", str(error)
                    continue
                for name in sorted(names - known):
                    arguments = ", ".join(step.arguments) or "none"
                    yield (
                        f"{where}.{path}",
                        (
                            f"{{{name}}} is no value of this step (its arguments: {arguments}; the person's: "
                            f"{', '.join(PERSON_VALUES)}; or a name some step reads)"
                        ),
                    )
            for name, reading in request.read.items():
                yield from _result_problems(f"{where}.read.{name}", step.results.get(name), reading)
            for status, results in request.accept.items():
                for name in results:
                    if name not in step.results:
                        yield f"{where}.accept.{status}.{name}", f"not a result of {step_name}: {_results(step)}"
        for name, result in step.results.items():
            if result.required and name not in read:
                yield (
                    f"steps.{step_name}.read",
                    f"read `{name}`, which {step_name} gives back (e.g. {{json: $.{name}}})",
                )


def _result_problems(where: str, result: Result | None, reading: Read) -> Iterator[tuple[str, str]]:
    if result is None or result.kind != "records":
        if reading.fields is not None:
            yield f"{where}.fields", "fields are for records (open_virtual_classes, homework...)"
        return
    named = set(reading.fields or {})
    if reading.regex is not None:
        named = set(re.compile(reading.regex).groupindex)
        required = {name for name, (_, default) in result.fields.items() if default is REQUIRED}
        if not required <= named:
            missing = ", ".join(sorted(required - named))
            yield f"{where}.regex", f"name the groups of the record's fields: (?P<{missing.split(', ')[0]}>...)"
    unknown = named - set(result.fields)
    if unknown:
        yield f"{where}", f"{', '.join(sorted(unknown))}: not a field of these records ({', '.join(result.fields)})"


def _results(step: Step) -> str:
    return ", ".join(step.results) or "it gives nothing back"
