"""Comparing runs: two real smoke runs (conftest's smoke_pair), one on the resized platform and one on the undersized
2021 one; their charts overlaid in one self-contained compare.html, their headline figures against the baseline,
compare.json, and the regressions the CI would fail on."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import SmokeRuns, assert_measured_the_platform

from schoolsurge.errors import ReportError
from schoolsurge.report.compare import (
    DEFAULT_REGRESSION_FIGURES,
    HEADLINE_FIGURES,
    compare_runs,
    regressions,
    write_comparison,
)
from schoolsurge.report.load.loader import load_run
from schoolsurge.report.outcome.served import served_share
from schoolsurge.rundir import Gauge


@pytest.fixture(scope="module")
def smoke(smoke_pair: SmokeRuns) -> SmokeRuns:
    return smoke_pair


class _Cells(HTMLParser):
    """The figure cells of compare.html's tables: (run, figure) -> (data-value, data-deviation)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], tuple[str, str]] = {}
        self.rows: list[list[str]] = []  # per figures table, the runs of its rows
        self.run: str | None = None
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "figures" in (a.get("class") or ""):
            self.rows.append([])
        if tag == "tr" and (a.get("class") or "").startswith("run") and self.rows:
            self.run = a["data-run"]
            self.rows[-1].append(self.run)
        if tag == "td" and "data-figure" in a and self.run:
            self.cells[(self.run, a["data-figure"] or "")] = (a["data-value"] or "", a["data-deviation"] or "")
        for attribute in ("src", "href"):
            if a.get(attribute):
                self.sources.append(a[attribute] or "")


def _parse(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def test_the_undersized_platform_serves_fewer_people_than_the_resized_one(smoke: SmokeRuns) -> None:
    assert_measured_the_platform(smoke.resized)
    assert_measured_the_platform(smoke.undersized)
    comparison = compare_runs([smoke.resized, smoke.undersized])
    base, under = comparison.runs
    assert base.run_dir == smoke.resized and under.run_dir == smoke.undersized
    assert base.profile == "resized" and under.profile == "undersized-2021"
    assert base.figures["served_share"] > 0.95
    assert base.figures["error_ratio"] < 0.01
    assert (
        under.figures["served_share"] < base.figures["served_share"] - 0.1
        or under.figures["error_ratio"] > base.figures["error_ratio"] + 0.05
    ), (base.figures, under.figures)
    # The figures are the runs' own: served_share and the histograms' totals over the SLO window.
    for compared in comparison.runs:
        data = load_run(compared.run_dir)
        share, totals = served_share(data), data.totals()
        assert compared.figures["served_share"] == pytest.approx(share.share)
        assert compared.figures["served_people"] == share.served
        assert compared.figures["login_p95_ms"] == pytest.approx(totals.login_ms[95])
        assert compared.figures["error_ratio"] == pytest.approx(totals.error_ratio)
        assert compared.figures["requests_per_s_mean"] == pytest.approx(totals.requests / 15)  # 1 h at 240x
        manifest = json.loads((compared.run_dir / "manifest.json").read_text())
        fraction = manifest["scale"] * manifest["speed"]
        assert compared.figures["requests_per_s_mean_national"] == pytest.approx(
            compared.figures["requests_per_s_mean"] / fraction
        )
        assert compared.figures["served_people_national"] == pytest.approx(share.served / manifest["scale"])
        assert compared.figures["held_requests_per_s"] is not None  # from capacity.json's run card


def test_regressions_flag_the_undersized_run_and_never_the_baseline(smoke: SmokeRuns) -> None:
    comparison = compare_runs([smoke.resized, smoke.undersized])
    lines = regressions(comparison, 5)
    assert lines, "the undersized platform regresses against the resized one"
    assert all(line.startswith(f"{smoke.undersized.name}: ") for line in lines), lines
    assert any("served" in line or "error ratio" in line for line in lines), lines
    # time to log in counts those who gave up as never logged in: the undersized p95 is "never reached"
    assert all("% worse" in line or "baseline's is 0" in line or "never reached" in line for line in lines)
    # Exactly the figures worse by more than 5%, by each figure's direction, recomputed here.
    base, under = comparison.runs
    expected = set()
    for key in DEFAULT_REGRESSION_FIGURES:
        figure = next(f for f in HEADLINE_FIGURES if f.key == key)
        b, v = base.figures[key], under.figures[key]
        if b is None or v is None:
            continue
        worse = (v > b) if figure.better == "lower" else (v < b)
        if worse and (b == 0 or abs(v - b) / abs(b) * 100 > 5):
            expected.add(figure.label + f" ({figure.terms},")
    assert {e for e in expected if any(e in line for line in lines)} == expected
    assert len(lines) == len(expected), lines
    # The other way round, the resized run is no worse than the undersized baseline in what people got.
    reverse = compare_runs([smoke.resized, smoke.undersized], baseline=smoke.undersized)
    assert reverse.baseline.run_dir == smoke.undersized
    assert regressions(reverse, 5, ["served_share", "login_p95_ms", "error_ratio"]) == []
    # A huge threshold flags only what is worse than a baseline of 0 (no percentage of 0 exists), or never reached.
    assert all("baseline's is 0" in line or "never reached" in line for line in regressions(comparison, 1e12))


def test_compare_html_is_self_contained_with_a_row_per_run_and_the_right_deviations(
    smoke: SmokeRuns, tmp_path: Path
) -> None:
    comparison = compare_runs([smoke.resized, smoke.undersized])
    path = write_comparison(comparison, tmp_path / "cmp")
    assert path == tmp_path / "cmp" / "compare.html"
    html = path.read_text()
    parsed = _parse(html)
    # Self-contained: every image embedded, no script, no stylesheet, nothing fetched.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html
    images = [s for s in parsed.sources if s.startswith("data:")]
    assert len(images) == 5 and all(s.startswith("data:image/png;base64,") for s in images)
    # The only links are the runs' reports, relative and existing.
    links = [s for s in parsed.sources if not s.startswith("data:")]
    assert len(links) == 2 and all((path.parent / link).resolve().exists() for link in links), links
    # One row per run in every figures table, the baseline first.
    names = [smoke.resized.name, smoke.undersized.name]
    assert parsed.rows and all(rows == names for rows in parsed.rows), parsed.rows
    assert html.count('class="run baseline"') == len(parsed.rows)
    # Deviation recomputed from the runs' own figures; compare.json holds the same numbers.
    saved = json.loads((path.parent / "compare.json").read_text())
    assert saved["baseline"] == smoke.resized.name
    assert [r["name"] for r in saved["runs"]] == names
    base_figures = saved["runs"][0]["figures"]
    checked = 0
    for run_index, saved_run in enumerate(saved["runs"]):
        # JSON has no infinity: a time to log in never reached (more gave up than its tail) is null there.
        in_memory = {k: None if v == math.inf else v for k, v in comparison.runs[run_index].figures.items()}
        assert saved_run["figures"] == pytest.approx(in_memory, nan_ok=False)
        for figure in HEADLINE_FIGURES:
            value, base = saved_run["figures"][figure.key], base_figures[figure.key]
            cell = parsed.cells.get((saved_run["name"], figure.key))
            if cell is None:  # a section no run has figures for (a sweep's SLO capacity)
                assert value is None and base is None
                continue
            raw = comparison.runs[run_index].figures[figure.key]
            assert cell[0] == ("inf" if raw == math.inf else "" if value is None else repr(float(value)))
            expected = None
            if value is not None and base is not None and base != 0:
                expected = 100 * (value - base) / abs(base)
            elif value is not None and base == 0 and value == 0:
                expected = 0.0
            deviation = saved_run["deviation_pct"][figure.key]
            if expected is None:
                assert deviation is None
            else:
                assert deviation == pytest.approx(expected)
                checked += 1
            if run_index > 0 and deviation is not None:
                assert float(cell[1]) == pytest.approx(expected)
    assert checked >= 20
    assert f"{saved['runs'][1]['deviation_pct']['served_share']:+.1f}%" in html


def test_runs_at_different_load_fractions_compare_in_national_terms(smoke: SmokeRuns, tmp_path: Path) -> None:
    """The same run said to have simulated twice the people: its run-terms rates are unchanged, its national rates
    halve, and the comparison says to read the national terms."""
    doubled = tmp_path / "doubled"
    shutil.copytree(smoke.resized, doubled)
    manifest = json.loads((doubled / "manifest.json").read_text())
    manifest["scale"] *= 2
    (doubled / "manifest.json").write_text(json.dumps(manifest))
    comparison = compare_runs([smoke.resized, doubled])
    base, other = comparison.runs
    assert other.figures["requests_per_s_mean"] == pytest.approx(base.figures["requests_per_s_mean"])
    assert other.figures["requests_per_s_mean_national"] == pytest.approx(
        base.figures["requests_per_s_mean_national"] / 2
    )
    assert comparison.deviation_pct(other, "successful_requests_per_s_mean_national") == pytest.approx(-50)
    assert any("national terms" in note for note in comparison.notes)
    assert any("successful requests/s" in line and "national terms" in line for line in regressions(comparison, 5))
    html = write_comparison(comparison, tmp_path / "cmp").read_text()
    assert "different load fractions" in html


def test_a_run_without_the_engines_files_is_compared_on_locusts_history(smoke: SmokeRuns, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(smoke.undersized, plain)
    for name in ("sessions.csv", "time_to_login.jsonl", "capacity.json"):
        (plain / name).unlink()
    comparison = compare_runs([smoke.resized, plain])
    other = comparison.runs[1]
    assert other.figures["served_share"] is None and other.figures["held_requests_per_s"] is None
    assert other.figures["login_p95_ms"] is not None and other.figures["error_ratio"] > 0
    assert other.figures["requests_per_s_peak"] is not None
    assert other.curves.served_share is None and other.curves.requests_per_s is not None
    # An unknown figure is not a regression.
    assert not any("people served" in line for line in regressions(comparison, 5))
    html = write_comparison(comparison, tmp_path / "cmp").read_text()
    assert "Not drawn (no data): plain" in html


@pytest.mark.parametrize(
    "case",
    ["one run", "no such directory", "a file", "not a run directory", "missing statistics", "twice"],
)
def test_unusable_inputs_are_refused_with_one_line_naming_the_path(smoke: SmokeRuns, tmp_path: Path, case: str) -> None:
    culprit: Path = tmp_path / "culprit"
    if case == "one run":
        runs = [smoke.resized]
        culprit = smoke.resized
    elif case == "no such directory":
        runs = [smoke.resized, culprit]
    elif case == "a file":
        culprit.write_text("not a run")
        runs = [smoke.resized, culprit]
    elif case == "not a run directory":
        culprit.mkdir()
        (culprit / "notes.txt").write_text("hello")
        runs = [smoke.resized, culprit]
    elif case == "missing statistics":
        shutil.copytree(smoke.undersized, culprit)
        (culprit / "locust_stats.csv").unlink()
        runs = [smoke.resized, culprit]
    else:
        runs = [smoke.resized, smoke.resized]
        culprit = smoke.resized
    with pytest.raises(ReportError) as raised:
        compare_runs(runs)
    message = str(raised.value)
    assert str(culprit) in message and "\n" not in message, message
    if case == "missing statistics":
        assert "_stats.csv" in message


def test_regressions_refuse_an_unknown_figure_or_a_negative_threshold(smoke: SmokeRuns) -> None:
    comparison = compare_runs([smoke.resized, smoke.undersized])
    with pytest.raises(ReportError, match="unknown figure nonsense"):
        regressions(comparison, 5, ["nonsense"])
    with pytest.raises(ReportError, match="threshold"):
        regressions(comparison, -1)
    assert set(DEFAULT_REGRESSION_FIGURES) <= {figure.key for figure in HEADLINE_FIGURES}
    for figure in HEADLINE_FIGURES:
        assert figure.better in ("higher", "lower")
        assert figure.terms in ("run terms", "national terms", "same in run and national terms")


def test_a_run_and_a_sweep_are_refused_in_one_line_naming_both(smoke: SmokeRuns, smoke_sweep: Path) -> None:
    """A sweep's figures are over its steps, a run's over the morning: compared, they read as a regression (exit 3)
    that is not one. Refused before anything is written, exit 2, one line naming both kinds and what to do."""
    for runs in ([smoke.resized, smoke_sweep], [smoke_sweep, smoke.undersized]):
        with pytest.raises(ReportError) as raised:
            compare_runs(runs)
        message = str(raised.value)
        assert "\n" not in message, message
        assert f"{smoke_sweep} is a capacity sweep" in message and "compare sweeps with sweeps" in message, message
        assert str(runs[0] if runs[0] != smoke_sweep else runs[1]) in message, message
    out = smoke_sweep.parent / "refused-comparison"
    command = [sys.executable, "-m", "schoolsurge", "compare", str(smoke.resized), str(smoke_sweep)]
    result = subprocess.run(
        [*command, "--fail-on-regression", "5", "--out", str(out)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "REGRESSION" not in result.stdout and not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "capacity sweep" in lines[0], result.stderr


def test_a_sweep_is_drawn_in_run_seconds_not_past_midnight(smoke_sweep: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sweep-copy"
    shutil.copytree(smoke_sweep, copy)
    comparison = compare_runs([smoke_sweep, copy])
    for compared in comparison.runs:
        assert not compared.on_clock
        for curve in (compared.curves.requests_per_s, compared.curves.in_session):
            assert curve is not None and curve.index.max() < 3600, curve.index.max()  # run seconds, not the clock


def test_a_missing_sample_is_a_gap_in_the_curves_not_a_zero(smoke: SmokeRuns, tmp_path: Path) -> None:
    """The ledger writes a second no process sampled as zeros, and a history may skip a tick: neither is a zero."""
    gap = tmp_path / "gap"
    shutil.copytree(smoke.resized, gap)
    sessions = (gap / "sessions.csv").read_text().splitlines()
    header = sessions[0].split(",")
    busy = [
        i
        for i, line in enumerate(sessions[1:], start=1)
        if float(line.split(",")[header.index(Gauge.ACTIVE_SESSIONS)] or 0) > 0
    ]
    middle = busy[len(busy) // 2]
    fields = sessions[middle].split(",")
    for gauge in Gauge:
        fields[header.index(gauge)] = "0"
    sessions[middle] = ",".join(fields)
    (gap / "sessions.csv").write_text("\n".join(sessions) + "\n")
    compared = compare_runs([smoke.resized, gap]).runs[1]
    in_session = compared.curves.in_session
    assert in_session is not None
    assert not (in_session.iloc[1:-1] == 0).any(), in_session[in_session == 0]
    # Without the engine's files, the requests curve comes from Locust's history: drop one tick of it.
    plain = tmp_path / "plain"
    shutil.copytree(smoke.resized, plain)
    for name in ("sessions.csv", "time_to_login.jsonl", "capacity.json"):
        (plain / name).unlink()
    history = (plain / "locust_stats_history.csv").read_text().splitlines()
    stamps = sorted({line.split(",")[0] for line in history[1:]})
    dropped = stamps[len(stamps) // 2]
    (plain / "locust_stats_history.csv").write_text(
        "\n".join([history[0], *(line for line in history[1:] if line.split(",")[0] != dropped)]) + "\n"
    )
    compared = compare_runs([smoke.resized, plain]).runs[1]
    requests = compared.curves.requests_per_s
    assert requests is not None and len(requests) > 5
    inside = requests.iloc[1:-1]
    assert not (inside == 0).any() and not inside.isna().any(), requests.to_string()
