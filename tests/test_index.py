"""reports/index.html: every run directory newest first, with links that exist; broken folders listed as
unreadable; fast on many runs (what it reads once is cached beside the index, never in the run directories)."""

from __future__ import annotations

import json
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import SmokeRuns, assert_measured_the_platform

from schoolsurge.errors import ReportError
from schoolsurge.report.compare import compare_runs, write_comparison
from schoolsurge.report.index import CACHE, index_rows, write_index
from schoolsurge.rundir import new_run_dir


@pytest.fixture(scope="module")
def smoke(smoke_pair: SmokeRuns, tmp_path_factory: pytest.TempPathFactory) -> SmokeRuns:
    # A copy of the shared pair's folder: the index and the comparison are written beside the runs.
    reports = tmp_path_factory.mktemp("index") / "reports"
    shutil.copytree(smoke_pair.reports, reports)
    runs = SmokeRuns(reports, reports / smoke_pair.resized.name, reports / smoke_pair.undersized.name)
    # As `schoolsurge compare` does: the comparison in a folder of its own beside the runs.
    write_comparison(compare_runs([runs.resized, runs.undersized]), new_run_dir(runs.reports, "compare"))
    return runs


class _Index(HTMLParser):
    """Rows of the runs table (data-run, in order), their text, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.text: dict[str, str] = {}
        self.links: dict[str, list[str]] = {}
        self.all_links: list[str] = []
        self.row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-run"):
            self.row = a["data-run"]
            self.rows.append(self.row)
            self.text[self.row] = ""
            self.links[self.row] = []
        if tag == "a" and a.get("href"):
            self.all_links.append(a["href"] or "")
            if self.row:
                self.links[self.row].append(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("tr", "table"):
            self.row = None

    def handle_data(self, data: str) -> None:
        if self.row:
            self.text[self.row] += data


def _parse(path: Path) -> _Index:
    parser = _Index()
    parser.feed(path.read_text())
    return parser


def _copy_reports(smoke: SmokeRuns, destination: Path) -> Path:
    shutil.copytree(smoke.reports, destination, ignore=shutil.ignore_patterns("index.html", CACHE, "*.log"))
    return destination


def test_lists_every_run_newest_first_with_links_that_exist(smoke: SmokeRuns) -> None:
    assert_measured_the_platform(smoke.resized)
    assert_measured_the_platform(smoke.undersized)
    path = write_index(smoke.reports)
    assert path == smoke.reports / "index.html"
    index = _parse(path)
    # The undersized run started after the resized one.
    assert index.rows == [smoke.undersized.name, smoke.resized.name]
    for href in index.all_links:
        assert "//" not in href
        assert (smoke.reports / href).exists(), href
    for run in index.rows:
        links = index.links[run]
        assert f"{run}/report.html" in links
        assert any(link.endswith("-compare/compare.html") for link in links), links
    resized, undersized = index.text[smoke.resized.name], index.text[smoke.undersized.name]
    # Each row leads with the run's answer (answer.json).
    assert "resized" in resized and "Held the peak: yes (07:30-08:30): SLOs met 2 of 2" in resized
    assert "100% (" in resized
    assert "undersized-2021" in undersized and "Held the peak: no" in undersized
    for text in (resized, undersized):
        assert "smoke" in text and "completed" in text and "run" in text and "2e-05 × 240x" in text
    html = path.read_text()
    assert "Comparisons" in html and smoke.resized.name in html.split("Comparisons", 1)[1]
    assert "<script" not in html and "http" not in html


def test_broken_folders_are_listed_as_unreadable(smoke: SmokeRuns, tmp_path: Path) -> None:
    reports = _copy_reports(smoke, tmp_path / "reports")
    garbage = reports / "20200101T000000Z-garbage"  # manifest garbage, no CSV
    garbage.mkdir()
    (garbage / "manifest.json").write_text("{not json at all")
    corrupt = reports / "20200102T000000Z-corrupt"  # a good manifest, a damaged statistics file
    shutil.copytree(smoke.resized, corrupt)
    (corrupt / "locust_stats.csv").write_bytes(b"Type,Name\n\x00\x00garbage")
    plain = reports / "plain-locust-run"  # `locust --csv run1`: Locust's files only
    plain.mkdir()
    for suffix in ("stats.csv", "stats_history.csv", "failures.csv"):
        shutil.copy(smoke.resized / f"locust_{suffix}", plain / f"run1_{suffix}")
    (reports / "notes.txt").write_text("not a folder")
    (reports / "empty-folder").mkdir()

    index = _parse(write_index(reports))
    assert set(index.rows) == {smoke.resized.name, smoke.undersized.name, garbage.name, corrupt.name, plain.name}
    assert "unreadable:" in index.text[garbage.name] and "_stats.csv" in index.text[garbage.name]
    assert "unreadable:" in index.text[corrupt.name] and "locust_stats.csv" in index.text[corrupt.name]
    assert "plain locust" in index.text[plain.name] and "unreadable" not in index.text[plain.name]
    assert "unreadable" not in index.text[smoke.resized.name]
    # The unreadable are not cached as readable: mending one lists it again.
    shutil.copy(smoke.resized / "locust_stats.csv", corrupt / "locust_stats.csv")
    index = _parse(write_index(reports))
    assert "unreadable" not in index.text[corrupt.name] and "SLOs met 2 of 2" in index.text[corrupt.name]


def test_fifty_runs_index_fast_once_read_and_nothing_is_written_in_them(smoke: SmokeRuns, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for n in range(50):
        source = (smoke.resized, smoke.undersized)[n % 2]
        copy = reports / f"20250101T{n // 60:02d}{n % 60:02d}00Z-smoke"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("*.log"))
        manifest = json.loads((copy / "manifest.json").read_text())
        manifest["started_unix"] = 1_735_689_600 + 60 * n
        manifest.pop("started_at")
        (copy / "manifest.json").write_text(json.dumps(manifest))
    before = {path: path.stat().st_mtime_ns for path in reports.rglob("*")}

    start = time.perf_counter()
    write_index(reports)
    first = time.perf_counter() - start
    start = time.perf_counter()
    path = write_index(reports)
    again = time.perf_counter() - start
    print(f"index of 50 runs: {first:.2f} s reading them, {again:.3f} s from the cache")
    assert again < 1.0, again
    assert first < 30, first  # about 20-40 ms a run on a quiet machine

    index = _parse(path)
    assert index.rows == sorted(index.rows, reverse=True) and len(index.rows) == 50
    after = {p: p.stat().st_mtime_ns for p in reports.rglob("*") if p.name not in ("index.html", CACHE)}
    assert after == before, "the index writes nothing into the run directories"

    # A run that changes is read again.
    newest = reports / index.rows[0]
    manifest = json.loads((newest / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (newest / "manifest.json").write_text(json.dumps(manifest))
    rows, _ = index_rows(reports)
    assert rows[0].name == newest.name and rows[0].summary["status"] == "interrupted"


def test_a_missing_reports_directory_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no such reports directory"):
        write_index(tmp_path / "nowhere")
