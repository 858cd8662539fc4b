"""manifest.json: what ran and how it ended, as one typed, versioned record (`Manifest`).

Whoever starts a run writes it before any load is sent (`start_manifest`), whoever learns something adds to it
(`update_manifest`: the engine its kind and sweep plan, the master its lost workers), and the end of the run says
how it ended (`finish_manifest`). Every field a writer passes must be one of the model's, with a value of its
type: anything else is a programming error (TypeError, ValueError), raised before the file is touched. Fields the
file holds that this version does not know (a newer version's) are kept as they are.

`read_manifest` validates what it reads: a wrong field raises ManifestError, one line naming the file, the field
and its value. The report reads a run someone may have edited by hand, so it reads with `salvage_manifest`: each
wrong field becomes one note naming it and reads as unknown, and the rest of the run is still reported.

Schema versions: 1, manifests written before `schema_version` (no `kind` for a morning, `arrival_model: closed`
for a closed-model run); 2, `schema_version` written. Both read the same; every field is optional.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from schoolsurge.errors import ManifestError
from schoolsurge.files import read_regular_text, readable, write_bytes_atomically
from schoolsurge.rundir.layout import MANIFEST, SCENARIO_COPY, write_json

SCHEMA_VERSION = 2
VERSIONED_PACKAGES = (
    "schoolsurge",
    "locust",
    "gevent",
    "geventhttpclient",
    "fastapi",
    "uvicorn",
    "bcrypt",
    "pandas",
    "matplotlib",
    "pydantic",
)


class RunKind(StrEnum):
    """What a run replays (manifest `kind`): picked once where the run starts, read by the report to pick its
    sections. A manifest without `kind` is a morning (older runs), and Locust output without a manifest is plain
    Locust (the report's own kind, never written)."""

    MORNING = "morning"  # the scenario's window, open arrivals on its schedule
    SWEEP = "sweep"  # a capacity sweep: the scenario's mix at constant rates per step
    CLOSED = "closed"  # persona user classes, Locust's closed model (locustfiles/personas.py)


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # the whole window was replayed
    INTERRUPTED = "interrupted"  # stopped early (Ctrl-C, SIGTERM, SIGHUP, the web UI's stop); results kept
    # Stopped because a client asked for a URL the loopback guard refuses (manifest `stopped_by` says which;
    # nothing was sent to it); results kept, the run invalid.
    REFUSED = "refused"
    FAILED = "failed"  # Locust exited with an error


def _no_bool(value: Any) -> Any:
    """true/false is not a number, whatever JSON's lax readers say."""
    if isinstance(value, bool):
        raise ValueError("a number, not true or false")
    return value


Number = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
Whole = Annotated[int, BeforeValidator(_no_bool)]


class _Record(BaseModel):
    # Unknown fields are ignored on read (a newer version's) and kept in the file by update_manifest.
    model_config = ConfigDict(extra="ignore")


class SweepPlan(_Record):
    """A capacity sweep's steps as planned (the engine's SweepReplay); all optional (a hand-made sweep)."""

    steps: Whole | None = None
    multiples_of_peak: list[Number] | None = None  # each step's offered rate, x the national peak arrival rate
    offered_arrivals_per_s: list[Number] | None = None  # run terms
    settle_s: Number | None = None
    measure_s: Number | None = None
    stop_margin: Number | None = None  # the sweep stops once a step breaches an objective by this factor
    load_fraction: Number | None = None
    refine_within: Number | None = None  # refinement bisects until (broke - held) / held is at most this
    refine_steps: Whole | None = None  # ... or this many refinement steps have run (its budget)


class LostWorker(_Record):
    """A Locust worker lost during the test (engine/roles.py); `note` is what the report shows."""

    worker: str | None = None
    part: str | None = None  # "2/3": its part of the schedule
    at_s: Number | None = None  # run second it was counted lost
    last_report_s: Number | None = None
    arrivals: Whole | None = None
    arrivals_lost: Whole | None = None
    note: str = ""


class LateWorker(_Record):
    """A Locust worker late to the schedule: it joined after the schedule was split (it took no part in the replay),
    or applied a change of it (a sweep's refinement step) after the change's start, or never confirmed one."""

    worker: str | None = None
    at_s: Number | None = None
    note: str = ""


class Manifest(_Record):
    """manifest.json. Every field may be missing (a run that stopped early, an older version, plain Locust)."""

    schema_version: Whole = 1
    kind: RunKind = RunKind.MORNING  # absent: a morning, or a closed-model run of schema 1 (arrival_model)
    status: RunStatus | None = None
    scenario: str | None = None
    scenario_file: str | None = None
    scale: Number | None = None  # share of the people simulated
    speed: Number | None = None  # time compression
    seed: Whole | None = None
    target: str | None = None  # base URL, or "embedded" until the embedded platform has one
    embedded: bool | None = None  # the target is the embedded reference platform
    profile: str | None = None  # the embedded platform's capacity profile
    sso: str | None = None  # cas or oidc
    client: str | None = None  # package.module:Class
    role: str | None = None  # the Locust role that wrote the results: local, master
    processes: Whole | None = None  # Locust processes running agents (`schoolsurge run`, or plain `locust -f`)
    drain_limit_s: Number | None = None  # a morning's: wall seconds after its window before the test ends
    sweep: SweepPlan | None = None
    arrival_model: str | None = None  # schema 1: "closed" for persona user classes (now `kind`)
    metrics_url: str | None = None  # the run's own Prometheus /metrics
    versions: dict[str, str] = Field(default_factory=dict)  # package -> version, python included
    started_at: str | None = None  # ISO 8601, UTC
    started_unix: Number | None = None
    ended_at: str | None = None
    ended_unix: Number | None = None
    results_written_unix: Number | None = None
    locust_exit_code: Whole | None = None
    stopped_by: str | None = None  # why the loopback guard stopped the run (status refused)
    lost_workers: list[LostWorker] = Field(default_factory=list)
    late_workers: list[LateWorker] = Field(default_factory=list)
    valid: bool | None = None  # False: the run measured the load generator, or the guard stopped it
    invalid_reason: str | None = None

    _present: bool = PrivateAttr(default=False)

    @model_validator(mode="before")
    @classmethod
    def _kind_of_schema_1(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data and data.get("arrival_model") == RunKind.CLOSED:
            return {**data, "kind": RunKind.CLOSED}
        return data

    @property
    def present(self) -> bool:
        """The run directory has a manifest with something in it (plain Locust output has none)."""
        return self._present

    @property
    def load_fraction(self) -> float | None:
        """scale x speed: the share of the national request rate the run offered; None unless both are known and
        positive."""
        from schoolsurge.models.replay import load_fraction  # the one definition; numpy only when asked

        if self.scale is None or self.speed is None or self.scale <= 0 or self.speed <= 0:
            return None
        return load_fraction(self.scale, self.speed)

    @property
    def worker_notes(self) -> tuple[str, ...]:
        """What the report says of the workers lost or late, lost first."""
        return tuple(worker.note for worker in (*self.lost_workers, *self.late_workers))


# ---- reading ---------------------------------------------------------------------------------------------------


def read_manifest(run_dir: Path) -> Manifest:
    """The run's manifest, validated; an empty one (`present` False) when there is none, or it is not a JSON
    object. ManifestError (one line: the file, the field, its value) when a field is wrong."""
    path = Path(run_dir) / MANIFEST
    raw = _raw(path)
    try:
        return _manifest(raw)
    except ValidationError as error:
        raise ManifestError(f"{path}: {_wrong_fields(error)}; correct or remove the field") from None


def salvage_manifest(run_dir: Path, notes: list[str]) -> Manifest:
    """read_manifest for a report: each wrong field is one note naming it, and reads as unknown."""
    return _salvaged(_raw(Path(run_dir) / MANIFEST), notes)


def _salvaged(raw: dict[str, Any], notes: list[str]) -> Manifest:
    try:
        return _manifest(raw)
    except ValidationError as error:
        notes.append(f"{MANIFEST}: {_wrong_fields(error)}; read as unknown")
        wrong = {problem["loc"][0] for problem in error.errors()}
    manifest = _manifest({name: value for name, value in raw.items() if name not in wrong})
    manifest._present = True
    return manifest


def _raw(path: Path) -> dict[str, Any]:
    """The file's JSON object; {} when it is missing, unreadable or not an object (the report notes that)."""
    try:
        raw = json.loads(read_regular_text(path))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def _manifest(raw: dict[str, Any]) -> Manifest:
    manifest = Manifest.model_validate(raw)
    manifest._present = bool(raw)
    return manifest


def _wrong_fields(error: ValidationError) -> str:
    """`scale 'a tenth': input should be a valid number` for each wrong field, `; `-separated."""
    wrong = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        value = repr(problem.get("input"))
        value = value if len(value) <= 40 else value[:40] + "..."
        message = problem["msg"].rstrip(".")
        wrong.append(f"{where} {value}: {message[:1].lower()}{message[1:]}")
    return "; ".join(wrong)


# ---- writing ---------------------------------------------------------------------------------------------------


def update_manifest(run_dir: Path, **fields: Any) -> Manifest:
    """Add `fields` to the run's manifest (created when missing; a link there is replaced, never followed) and
    return the whole manifest. A field not in Manifest, or a value not of its type, raises before writing; a
    wrong field already in the file (edited by hand) is left there and returned as unknown."""
    unknown = sorted(set(fields) - set(Manifest.model_fields))
    if unknown:
        raise TypeError(f"{', '.join(unknown)}: not a field of Manifest (rundir/manifest.py); add it there first")
    given = Manifest.model_validate(fields).model_dump(mode="json", include=set(fields), exclude_unset=True)
    path = Path(run_dir) / MANIFEST
    raw = json.loads(read_regular_text(path)) if readable(path) else {}
    raw.update(given)
    write_json(path, raw)
    return _salvaged(raw, [])


def start_manifest(run_dir: Path, scenario_path: Path, **fields: Any) -> Manifest:
    """Record what is about to run (and a copy of the scenario file) before any load is sent."""
    write_bytes_atomically(Path(run_dir) / SCENARIO_COPY, Path(scenario_path).read_bytes())
    return update_manifest(
        run_dir,
        schema_version=SCHEMA_VERSION,
        scenario_file=str(scenario_path),
        versions=package_versions(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        started_unix=time.time(),
        status=RunStatus.RUNNING,
        **fields,
    )


def finish_manifest(run_dir: Path, status: RunStatus, **fields: Any) -> Manifest:
    """Record how the run ended."""
    return update_manifest(
        run_dir,
        status=status,
        ended_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ended_unix=time.time(),
        **fields,
    )


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
