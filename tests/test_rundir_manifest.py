"""manifest.json as a typed, versioned record: a wrong field is named in one line (an error for a reader that
must trust it, a note in a report), a writer cannot add a field the model does not have, and manifests of
earlier versions read as they always did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schoolsurge.errors import ManifestError, ReportError
from schoolsurge.report import load_run
from schoolsurge.rundir import (
    MANIFEST,
    SCHEMA_VERSION,
    STATS_CSV,
    RunKind,
    RunStatus,
    finish_manifest,
    read_manifest,
    salvage_manifest,
    start_manifest,
    update_manifest,
)

SMOKE = Path(__file__).resolve().parents[1] / "scenarios" / "smoke.yaml"
STATS = "Type,Name,Request Count,Failure Count,Requests/s,50%,95%,99%\n,Aggregated,0,0,0,0,0,0\n"


def _write(run_dir: Path, manifest: dict) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MANIFEST).write_text(json.dumps(manifest))
    return run_dir


def test_a_wrong_field_is_named_in_one_line(tmp_path: Path) -> None:
    run_dir = _write(tmp_path / "run", {"scenario": "smoke", "scale": "a tenth", "seed": 2021, "versions": "?"})
    with pytest.raises(ManifestError) as raised:
        read_manifest(run_dir)
    message = str(raised.value)
    assert isinstance(raised.value, ReportError) and "\n" not in message
    assert str(run_dir / MANIFEST) in message and "scale 'a tenth'" in message and "versions '?'" in message
    notes: list[str] = []
    salvaged = salvage_manifest(run_dir, notes)
    assert salvaged.scale is None and salvaged.versions == {} and salvaged.seed == 2021 and salvaged.present
    assert len(notes) == 1 and notes[0].startswith(f"{MANIFEST}: scale 'a tenth'") and "read as unknown" in notes[0]


def test_the_report_of_a_hand_damaged_manifest_says_which_field_it_did_not_read(tmp_path: Path) -> None:
    run_dir = _write(tmp_path / "run", {"scenario": "smoke", "scale": "a tenth", "speed": 120, "seed": "x"})
    (run_dir / STATS_CSV).write_text(STATS)
    data = load_run(run_dir)
    assert data.manifest.scale is None and data.manifest.speed == 120 and data.manifest.scenario == "smoke"
    assert any("scale 'a tenth'" in note and "seed 'x'" in note for note in data.notes)


def test_a_writer_cannot_add_a_field_the_model_does_not_have(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="widgets: not a field of Manifest"):
        update_manifest(tmp_path, widgets=3)
    with pytest.raises(ValueError, match="scale"):
        update_manifest(tmp_path, scale="a tenth")
    with pytest.raises(ValueError, match="status"):
        update_manifest(tmp_path, status="exploded")
    assert not (tmp_path / MANIFEST).exists()  # refused before the file was touched


def test_what_a_run_writes_reads_back_typed(tmp_path: Path) -> None:
    start_manifest(tmp_path, SMOKE, scenario="smoke", scale=2e-5, speed=240, seed=2021, processes=1)
    update_manifest(tmp_path, lost_workers=[{"worker": "w1", "part": "1/2", "at_s": 3.5, "arrivals": 4,
                                             "arrivals_lost": 2, "note": "Worker w1 was lost"}])  # fmt: skip
    finish_manifest(tmp_path, RunStatus.COMPLETED, locust_exit_code=0)
    manifest = read_manifest(tmp_path)
    assert manifest.schema_version == SCHEMA_VERSION and manifest.kind is RunKind.MORNING
    assert manifest.status is RunStatus.COMPLETED and manifest.started_unix < manifest.ended_unix
    assert manifest.load_fraction == pytest.approx(2e-5 * 240) and manifest.worker_notes == ("Worker w1 was lost",)
    written = json.loads((tmp_path / MANIFEST).read_text())
    assert written["status"] == "completed" and written["speed"] == 240 and written["lost_workers"][0]["part"] == "1/2"


def test_manifests_of_earlier_versions_read_as_they_did(tmp_path: Path) -> None:
    morning = read_manifest(_write(tmp_path / "morning", {"scenario": "smoke", "scale": 2e-5, "speed": 240}))
    assert morning.schema_version == 1 and morning.kind is RunKind.MORNING and morning.present
    closed = read_manifest(_write(tmp_path / "closed", {"arrival_model": "closed", "status": "completed"}))
    assert closed.kind is RunKind.CLOSED
    sweep = read_manifest(_write(tmp_path / "sweep", {"kind": "sweep", "sweep": {"steps": 4, "stop_margin": 5}}))
    assert sweep.kind is RunKind.SWEEP and sweep.sweep is not None and sweep.sweep.stop_margin == 5
    assert not read_manifest(tmp_path / "nowhere").present  # no manifest: plain Locust output
    assert not read_manifest(_write(tmp_path / "list", [])).present  # type: ignore[arg-type]


def test_a_field_of_a_newer_version_is_kept_when_another_is_written(tmp_path: Path) -> None:
    _write(tmp_path, {"scenario": "smoke", "written_by_a_newer_version": {"x": 1}})
    update_manifest(tmp_path, valid=True)
    written = json.loads((tmp_path / MANIFEST).read_text())
    assert written == {"scenario": "smoke", "written_by_a_newer_version": {"x": 1}, "valid": True}
