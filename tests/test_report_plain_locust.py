"""`schoolsurge report` on any Locust run: a real plain `locust --csv run1` against the embedded platform on a
loopback port, with and without --csv-full-history, then damaged copies that must fail in one line naming
file and row (never a traceback), from load_run and from the command line alike."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.errors import ReportError
from schoolsurge.report import build_report, load_run
from schoolsurge.report.load.loader import PLAIN_LOCUST_NOTE
from schoolsurge.report.load.run_data import HistoryDetail
from schoolsurge.report.outcome.answer import read_answer
from schoolsurge.report.run.facts import run_facts
from schoolsurge.report.series.axis import time_axis
from schoolsurge.report.series.locust_rates import running_totals

PREFIX = "run1"
LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Visitor(FastHttpUser):
    wait_time = constant(0.2)

    @task(2)
    def login_form(self):
        self.client.get("/cas/login")

    @task(2)
    def health(self):
        self.client.get("/healthz")

    @task
    def missing(self):
        self.client.get("/no-such-page")  # a 404: the failures table has a row
"""
REQUEST_NAMES = ("/cas/login", "/healthz", "/no-such-page")
EXPECTED_FILES = ("exceptions", "failures", "stats", "stats_history")


def plain_locust_run(base_url: str, out: Path, *, full_history: bool = True) -> Path:
    """Run a real plain Locust (not the schoolsurge engine) for 5 s against base_url; its CSV files go to out/."""
    out.mkdir(parents=True, exist_ok=True)
    locustfile = out.parent / f"{out.name}-locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "5s",
        "--csv",
        str(out / PREFIX),
        *(["--csv-full-history"] if full_history else []),
        "-H",
        base_url,
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
    ]
    # Another directory than the project's, so Locust reads no configuration file of ours.
    done = subprocess.run(command, cwd=out.parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / f"{PREFIX}_stats.csv").exists(), done.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def full_run(platform_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plain_locust_run(platform_url, tmp_path_factory.mktemp("plain") / "full")


@pytest.fixture(scope="module")
def summary_run(platform_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plain_locust_run(platform_url, tmp_path_factory.mktemp("plain") / "summary", full_history=False)


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    (copy / "report.html").unlink(missing_ok=True)
    return copy


def test_report_of_a_plain_locust_run_with_full_history(full_run: Path, tmp_path: Path) -> None:
    copy = _copy(full_run, tmp_path)
    assert sorted(p.name for p in copy.iterdir()) == [f"{PREFIX}_{n}.csv" for n in sorted(EXPECTED_FILES)]
    data = load_run(copy)
    assert data.plain_locust and data.locust_prefix == PREFIX
    assert data.history_detail == HistoryDetail.BY_NAME
    assert data.sessions is None and data.scenario is None
    assert not [note for note in data.notes if "history" in note]
    html = build_report(copy).read_text()
    for name in REQUEST_NAMES:
        assert name in html
    assert "This is a plain Locust run" in html and "locustfiles/surge.py" in html
    assert "LocustBadStatusCode(code=404)" in html, "the failures table lists the 404s"
    assert html.count("<svg") + html.count("data:image/png;base64,") >= 2, "users and requests over time"


def test_a_plain_locust_run_gets_an_answer_with_what_can_be_said(full_run: Path, tmp_path: Path) -> None:
    """No scenario: held and instances not determined, said so; capacity from the request rate of intervals
    with no failure and p95 within the stated objective (this run's 404s fail every interval: below its
    lowest rate); the answer leads the report."""
    copy = _copy(full_run, tmp_path)
    html = build_report(copy).read_text()
    answer = read_answer(copy)
    assert answer is not None and answer.kind == "locust" and answer.held is None
    assert answer.held_text.startswith("not determined: ")
    assert answer.capacity is not None and answer.capacity.broke_per_s is not None
    assert "no failure, p95 <= 1,000 ms" in answer.capacity_text
    assert answer.instances_text.startswith("not determined: ") and answer.binds.startswith("not determined: ")
    assert html.index('id="answer"') < html.index("This is a plain Locust run")


def test_report_of_a_plain_locust_run_without_full_history(summary_run: Path, tmp_path: Path) -> None:
    copy = _copy(summary_run, tmp_path)
    data = load_run(copy)
    assert data.history_detail == HistoryDetail.TOTAL, "Locust still writes the Aggregated rows"
    assert data.notes[0] == PLAIN_LOCUST_NOTE
    assert any("--csv-full-history" in note for note in data.notes)
    html = build_report(copy).read_text()
    for name in REQUEST_NAMES:
        assert name in html
    assert "--csv-full-history" in html


@pytest.mark.parametrize("history", ["full", "summary"])
def test_a_plain_runs_throughput_comes_from_its_running_totals(
    full_run: Path, summary_run: Path, tmp_path: Path, history: str
) -> None:
    """Locust's Requests/s is a lagging window (0 at the first ticks, under the rate while users ramp up): the
    chart's rates are the differences of the running totals, and add up to the requests Locust counted."""
    copy = _copy(full_run if history == "full" else summary_run, tmp_path)
    data = load_run(copy)
    totals = running_totals(data)
    assert totals is not None
    axis = time_axis(data)
    rates = totals.per_second(axis.run_edges)
    measured = rates.dropna()
    covered = (measured.index.to_series().shift(-1).fillna(totals.last_second) - measured.index.to_series()).clip(0)
    counted = float((measured["requests"] * covered).sum())
    aggregated = data.stats[data.stats["Name"] == "Aggregated"].iloc[0]
    last_tick = data.history[data.history["Name"] == "Aggregated"].iloc[-1]
    assert counted == pytest.approx(float(last_tick["Total Request Count"]), rel=0.01)
    assert counted == pytest.approx(float(aggregated["Request Count"]), rel=0.1)
    # Users send all along (5 users every 0.2 s): every second from the first to the last tick has requests,
    # where Locust's own window reads 0 at its first ticks.
    assert (measured["requests"].iloc[:-1] > 0).all(), measured
    first_ticks = data.history[data.history["Name"] == "Aggregated"]["Requests/s"].iloc[:2]
    assert (first_ticks == 0).any(), "Locust's window lags: the reason this chart no longer draws it"
    html = build_report(copy).read_text()
    assert "differences of the running totals" in html


def test_a_plain_run_has_its_start_end_and_duration_and_counts_requests_not_people(
    full_run: Path, tmp_path: Path
) -> None:
    copy = _copy(full_run, tmp_path)
    data = load_run(copy)
    facts = dict(run_facts(data))
    stamps = data.history["Timestamp"]
    started, ended = facts["started / ended (UTC)"].split(" / ")
    assert started.startswith("20") and ended.startswith("20"), facts
    assert facts["duration"] == f"{round(stamps.max() - stamps.min()):,} s"
    # The whole history was read: its first and last rows (how many seconds apart is the machine's doing: on a busy
    # one, the 5-second test's first answered request, and so its first row, can come seconds in).
    written = pd.read_csv(copy / f"{PREFIX}_stats_history.csv")["Timestamp"]
    assert (stamps.min(), stamps.max()) == (written.min(), written.max()) and written.max() > written.min()
    html = build_report(copy).read_text()
    steps = html[html.index('id="steps"') : html.index('id="failures"')]
    assert ">people<" not in steps and ">requests<" in steps
    assert "count people" not in steps


def test_report_without_any_history_file(summary_run: Path, tmp_path: Path) -> None:
    copy = _copy(summary_run, tmp_path)
    (copy / f"{PREFIX}_stats_history.csv").unlink()
    data = load_run(copy)
    assert data.history_detail == HistoryDetail.NONE and data.test_start_unix is None
    assert any(f"no {PREFIX}_stats_history.csv" in note for note in data.notes)
    html = build_report(copy).read_text()
    assert "/cas/login" in html


def test_the_locust_prefix_wins_and_several_others_are_refused(full_run: Path, tmp_path: Path) -> None:
    copy = _copy(full_run, tmp_path)
    for name in EXPECTED_FILES:  # as `locust -f locustfiles/surge.py --csv DIR/run1` leaves it: both prefixes
        shutil.copyfile(copy / f"{PREFIX}_{name}.csv", copy / f"locust_{name}.csv")
    assert load_run(copy).locust_prefix == "locust"
    for name in EXPECTED_FILES:
        (copy / f"locust_{name}.csv").rename(copy / f"run2_{name}.csv")
    with pytest.raises(ReportError, match=r"several Locust runs \(run1_stats\.csv, run2_stats\.csv\)"):
        load_run(copy)
    for path in copy.glob("*_stats*.csv"):
        path.unlink()
    with pytest.raises(ReportError, match=r"no Locust statistics"):
        load_run(copy)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _truncate_mid_row(path: Path) -> int:
    lines = _lines(path)
    last = lines[-1]
    path.write_bytes(b"".join(lines[:-1]) + last[: len(last) // 3])
    return len(lines)


def _garbage_row(path: Path) -> int:
    lines = _lines(path)
    path.write_bytes(b"".join([lines[0], lines[1], b"<html>502 Bad Gateway</html>\n", *lines[2:]]))
    return 3


def _not_a_number(path: Path) -> int:
    lines = _lines(path)
    fields = lines[2].split(b",")
    fields[2] = b"abc"  # Request Count
    lines[2] = b",".join(fields)
    path.write_bytes(b"".join(lines))
    return 3


def _too_many_fields(path: Path) -> int:
    lines = _lines(path)
    lines[1] = lines[1].rstrip(b"\r\n") + b",1,2,3\r\n"
    path.write_bytes(b"".join(lines))
    return 2


def _nul_bytes(path: Path) -> int:
    lines = _lines(path)
    lines[3] = b"\0" * 8 + lines[3]
    path.write_bytes(b"".join(lines))
    return 4


def _not_utf8(path: Path) -> int:
    lines = _lines(path)
    lines[2] = lines[2].replace(b",", "é".encode("latin-1") + b",", 1)
    path.write_bytes(b"".join(lines))
    return 3


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _header_only(path: Path) -> None:
    path.write_bytes(_lines(path)[0])


CORRUPTIONS: dict[str, tuple[str, Callable[[Path], int | None], str]] = {
    "truncated mid-row": ("stats", _truncate_mid_row, r"fields, the header has 22 \(the file ends mid-row"),
    "garbage row": ("stats", _garbage_row, r"1 field, the header has 22"),
    "not a number": ("stats", _not_a_number, r"'abc' is not a number in column Request Count"),
    "too many fields": ("stats", _too_many_fields, r"25 fields, the header has 22"),
    "NUL bytes": ("stats", _nul_bytes, r"NUL byte"),
    "not UTF-8": ("stats", _not_utf8, r"byte 0xe9 is not UTF-8 text"),
    "empty stats": ("stats", _empty, r"empty file, not even a header row"),
    "header only": ("stats", _header_only, r"header only, no rows"),
    "history truncated": ("stats_history", _truncate_mid_row, r"the file ends mid-row"),
    "history garbage": ("stats_history", _garbage_row, r"1 field, the header has 24"),
}


@pytest.mark.parametrize("case", CORRUPTIONS, ids=str)
def test_a_damaged_csv_fails_in_one_line_naming_file_and_row(
    case: str, full_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kind, corrupt, reason = CORRUPTIONS[case]
    copy = _copy(full_run, tmp_path)
    path = copy / f"{PREFIX}_{kind}.csv"
    row = corrupt(path)
    where = re.escape(f"{path} row {row}: ") if row else re.escape(f"{path}: ")
    with pytest.raises(ReportError, match=f"^{where}.*{reason}.*rerun the test") as raised:
        load_run(copy)
    message = str(raised.value)
    assert "\n" not in message
    assert main(["report", str(copy)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.strip() == f"schoolsurge: {message}"
    assert "Traceback" not in captured.err + captured.out
    assert not (copy / "report.html").exists()


def test_a_damaged_failures_file_is_noted_not_fatal(full_run: Path, tmp_path: Path) -> None:
    copy = _copy(full_run, tmp_path)
    path = copy / f"{PREFIX}_failures.csv"
    assert len(_lines(path)) > 1, "the 404s were recorded"
    _garbage_row(path)
    html = build_report(copy).read_text()
    assert f"{PREFIX}_failures.csv" in html and "failures are not listed by error" in html
