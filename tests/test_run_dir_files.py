"""Run directories and reports/ as someone else could hand them over: a link where the suite writes a file is
replaced, never written through; a FIFO is skipped with a note, never waited on; two processes refreshing one
index never collide; a huge Locust history is read by the index a block at a time. Real Locust output of real
runs, real links and FIFOs, real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHORT_SESSION_MINUTES, smoke_half_hour
from test_engine_run import FAST, ROOT, SMOKE, smoke_platform
from test_report_plain_locust import PREFIX, plain_locust_run

from schoolsurge.cli import main
from schoolsurge.engine.ledger import Ledger, write_histograms, write_sessions_csv
from schoolsurge.errors import ReportError
from schoolsurge.files import atomic_file
from schoolsurge.report.index import CACHE, INDEX, write_index
from schoolsurge.report.load.loader import HISTORY_TABLE, load_run
from schoolsurge.report.load.locust_csv import BLOCK_BYTES, read_table
from schoolsurge.report.outcome.served import served_share
from schoolsurge.rundir import (
    CAPACITY_JSON,
    FAILURES_CSV,
    HISTOGRAMS,
    HISTORY_CSV,
    MANIFEST,
    REPORT,
    SCENARIO_COPY,
    SESSIONS_CSV,
    STATS_CSV,
    TARGET_METRICS,
    TARGET_METRICS_SERIES,
    TIMELINE,
)

HISTORY = f"{PREFIX}_stats_history.csv"
OWNER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOwnerOwnerOwnerOwnerOwnerOwnerOwnerOwner owner@laptop\n"
PLANTED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPlantedPlantedPlantedPlantedPlanted someone@elsewhere"
DEADLINE_S = 120


@pytest.fixture(scope="module")
def locust_run(platform_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return plain_locust_run(platform_url, tmp_path_factory.mktemp("plain") / "run")


def crafted_run(locust_run: Path, reports: Path, name: str) -> Path:
    """A run directory as someone could hand it over: Locust's files of a real run, the smoke scenario whose
    description carries a key line, and a timeline, so that the report and the index judge it."""
    run_dir = reports / name
    shutil.copytree(locust_run, run_dir)
    scenario = SMOKE.read_text()
    description = next(line for line in scenario.splitlines() if line.startswith("description:"))
    hostile = json.dumps(f"A scenario\n{PLANTED_KEY}\n")  # a JSON string is a YAML double-quoted one
    (run_dir / SCENARIO_COPY).write_text(scenario.replace(description, f"description: {hostile}"))
    first = pd.read_csv(run_dir / HISTORY)["Timestamp"].min()
    (run_dir / TIMELINE).write_text(json.dumps({"test_start_unix": float(first), "speed": FAST}))
    return run_dir


def plant_links(folder: Path, names: list[str], victims: Path) -> list[Path]:
    """A link at each name to a file standing in for ~/.ssh/authorized_keys; returns the victims."""
    victims.mkdir(exist_ok=True)
    planted = []
    for name in names:
        victim = victims / f"authorized_keys{name}"
        victim.write_text(OWNER_KEY)
        (folder / name).symlink_to(victim)
        planted.append(victim)
    return planted


def _written(names: list[str]) -> list[str]:
    """Each name and the fixed temporary name the suite once wrote it through (.NAME.tmp)."""
    return [*names, *(f".{name}.tmp" for name in names)]


def test_report_replaces_links_and_never_writes_through_them(locust_run: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run_dir = crafted_run(locust_run, reports, "20250101T000000Z-handed-over")
    victims = plant_links(run_dir, _written([REPORT]), tmp_path / "victims")
    victims += plant_links(reports, _written([INDEX, CACHE]), tmp_path / "victims")

    assert main(["report", str(run_dir)]) == 0

    for victim in victims:
        assert victim.read_text() == OWNER_KEY, f"{victim.name} was written through a link"
    for path in (run_dir / REPORT, reports / INDEX, reports / CACHE):
        assert path.is_file() and not path.is_symlink(), path
    assert PLANTED_KEY in (run_dir / REPORT).read_text(), "the description (and its key line) is in the report"
    assert run_dir.name in (reports / INDEX).read_text()
    # No temporary file of ours is left behind: the only ones are the links planted under the old fixed names.
    assert sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")) == [f".{REPORT}.tmp"]
    assert sorted(p.name for p in reports.iterdir() if p.name.endswith(".tmp")) == [f".{CACHE}.tmp", f".{INDEX}.tmp"]


def test_a_run_into_a_folder_holding_links_writes_none_through_them(tmp_path: Path) -> None:
    """`locust -f locustfiles/surge.py --run-dir DIR` on a folder that already holds links at every name a run
    writes, Locust's own CSV files included (the locustfile's writer opens them by name)."""
    names = [MANIFEST, SCENARIO_COPY, TIMELINE, STATS_CSV, HISTORY_CSV, FAILURES_CSV, "locust_exceptions.csv"]
    names += [SESSIONS_CSV]
    names += [HISTOGRAMS, TARGET_METRICS, TARGET_METRICS_SERIES, CAPACITY_JSON, REPORT]
    run_dir = tmp_path / "reports" / "handed-over"
    run_dir.mkdir(parents=True)
    victims = plant_links(run_dir, _written(names), tmp_path / "victims")
    victims += plant_links(run_dir.parent, _written([INDEX, CACHE]), tmp_path / "victims")

    scenario = smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES)  # every file written, in a short run
    with smoke_platform(tmp_path / "platform") as platform:
        command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "surge.py"), "--headless"]
        command += ["--only-summary", "-H", platform.base_url, "--scenario", str(scenario), "--speed", str(FAST)]
        command += ["--run-dir", str(run_dir), "--exit-code-on-error", "0"]
        finished = subprocess.run(command, cwd=ROOT, timeout=DEADLINE_S, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]

    for victim in victims:
        assert victim.read_text() == OWNER_KEY, f"{victim.name} was written through a link"
    for name in names:
        assert not (run_dir / name).is_symlink(), name
    for name in (MANIFEST, SCENARIO_COPY, STATS_CSV, HISTORY_CSV, SESSIONS_CSV, REPORT):
        assert (run_dir / name).is_file() and (run_dir / name).stat().st_size > 0, name
    assert "Held the peak:" in finished.stdout


def test_a_fifo_in_a_sibling_run_is_skipped_with_a_note(locust_run: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    mine = crafted_run(locust_run, reports, "20250101T000000Z-mine")
    theirs = crafted_run(locust_run, reports, "20250101T000100Z-theirs")
    for name in (HISTORY, TIMELINE):
        (theirs / name).unlink()
        os.mkfifo(theirs / name)  # opening it to read blocks until someone writes: never, here

    # In a subprocess with a deadline: a regression fails here instead of hanging the tests.
    report = [sys.executable, "-m", "schoolsurge", "report"]
    done = subprocess.run([*report, str(mine)], timeout=DEADLINE_S, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    index = (reports / INDEX).read_text()
    assert f"{HISTORY} skipped: a FIFO, not a regular file" in index
    assert f"{TIMELINE} skipped: a FIFO, not a regular file" in index
    assert "unreadable:" not in index

    # The report of the folder holding them is written too, and says what it left unread.
    done = subprocess.run([*report, str(theirs)], timeout=DEADLINE_S, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{HISTORY} skipped: a FIFO, not a regular file" in (theirs / REPORT).read_text()


def test_fifos_and_links_where_a_report_reads_are_skipped(locust_run: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run_dir = crafted_run(locust_run, reports, "20250101T000000Z-strange")
    fifos = (SCENARIO_COPY, f"{PREFIX}_failures.csv", f"{PREFIX}_exceptions.csv", SESSIONS_CSV, HISTOGRAMS)
    for name in fifos:
        (run_dir / name).unlink(missing_ok=True)
        os.mkfifo(run_dir / name)
    (tmp_path / "secret").write_text("Timestamp,User Count\n1,2\n")
    (run_dir / HISTORY).unlink()
    (run_dir / HISTORY).symlink_to(tmp_path / "secret")  # read through it, it could show another file's rows

    command = [sys.executable, "-m", "schoolsurge", "report", str(run_dir)]
    done = subprocess.run(command, timeout=DEADLINE_S, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    html = (run_dir / REPORT).read_text()
    for name in fifos:
        assert f"{name} skipped: a FIFO, not a regular file" in html, name
    assert f"{HISTORY} skipped: a symbolic link, not a regular file" in html


def test_two_processes_refreshing_one_index_both_succeed(locust_run: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    for n in range(3):
        crafted_run(locust_run, reports, f"2025010{n + 1}T000000Z-run")
    write_index(reports)  # the runs read once: what follows writes the page (and the cache) again and again
    go = tmp_path / "go"
    writer = """
import sys, time
from pathlib import Path
from schoolsurge.report.index import write_index
reports, go, ready, times = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():  # both start writing together
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.005)
for _ in range(times):
    write_index(reports)
"""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", writer, str(reports), str(go), str(tmp_path / f"ready{n}"), "300"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not all((tmp_path / f"ready{n}").exists() for n in range(2)):
            assert time.monotonic() < deadline, "the writers never started"
            assert all(process.poll() is None for process in processes), "a writer died before starting"
            time.sleep(0.01)
        go.touch()
        errors = [process.communicate(timeout=DEADLINE_S)[1] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [process.returncode for process in processes] == [0, 0], errors
    assert not any("FileNotFoundError" in error for error in errors), errors
    assert (reports / INDEX).read_text().count('data-run="') == 3
    assert not list(reports.glob(".*.tmp")), "no temporary file left behind"


def test_a_writer_never_shares_its_temporary_file(tmp_path: Path) -> None:
    """The collision above, made certain: a whole index written while another writer is halfway through."""
    with atomic_file(tmp_path / INDEX) as handle:
        handle.write("<p>the other writer, slow</p>")
        write_index(tmp_path)
    assert (tmp_path / INDEX).read_text() == "<p>the other writer, slow</p>", "the last rename wins, whole"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".index.html")) == []


def write_engine_files(run_dir: Path, seconds: int) -> None:
    """sessions.csv and time_to_login.jsonl of a run of `seconds` seconds, as the engine writes them: people due
    each second, most of them getting in, more slowly as the run goes on."""
    ledger = Ledger()
    for second in range(seconds):
        ledger.count(second, "started", 3)
        ledger.count(second, "logins_succeeded", 2 + second % 2)
        ledger.count(second, "abandoned", 1 - second % 2)
        ledger.time_to_login(second, 50 + second % 5000)
    write_sessions_csv(ledger, run_dir / SESSIONS_CSV)
    write_histograms(ledger, run_dir / HISTOGRAMS)


def grown_history(source: Path, destination: Path, rows_wanted: int) -> list[str]:
    """Locust's history of a real run repeated with time moving on and running totals growing, to
    `rows_wanted` rows; returns the lines written (header first)."""
    lines = source.read_text().splitlines()
    header, rows = lines[0], [line.split(",") for line in lines[1:]]
    columns = header.split(",")
    stamp, total = columns.index("Timestamp"), columns.index("Total Request Count")
    span = int(rows[-1][stamp]) - int(rows[0][stamp]) + 1
    top = max(int(row[total]) for row in rows) + 1
    out = [header]
    lap = 0
    while len(out) <= rows_wanted:
        for row in rows:
            moved = list(row)
            moved[stamp], moved[total] = str(int(row[stamp]) + lap * span), str(int(row[total]) + lap * top)
            out.append(",".join(moved))
        lap += 1
    destination.write_text("\n".join(out) + "\n")
    return out


def test_the_index_judges_from_a_few_rows_what_the_whole_history_says(locust_run: Path, tmp_path: Path) -> None:
    run_dir = crafted_run(locust_run, tmp_path, "20250101T000000Z-long")
    lines = grown_history(locust_run / HISTORY, run_dir / HISTORY, 60_000)
    assert (run_dir / HISTORY).stat().st_size > 3 * BLOCK_BYTES, "the history spans several blocks"
    # The SLO window, 07:45-08:15 of the 07:30-08:30 morning, in the middle of the file: from 1/4 to 3/4 of it.
    scenario = (
        (run_dir / SCENARIO_COPY).read_text().replace("slo:\n", 'slo:\n  window: {start: "07:45", end: "08:15"}\n')
    )
    (run_dir / SCENARIO_COPY).write_text(scenario)
    first, last = int(lines[1].split(",")[0]), int(lines[-1].split(",")[0])
    (run_dir / TIMELINE).write_text(json.dumps({"test_start_unix": first, "speed": 3600 / (last - first)}))
    write_engine_files(run_dir, last - first)

    whole, index = load_run(run_dir), load_run(run_dir, summary=True)
    assert index.slo_seconds() == whole.slo_seconds()
    start, end = whole.slo_seconds()
    assert 0 < start < end < last - first
    assert index.totals() == whole.totals()
    assert index.totals().requests > 0 and index.totals().login_ms
    names = whole.history["Name"].nunique()
    assert len(index.history) <= 2 * names + 2 < len(whole.history) / 1000
    assert len(index.histograms) == 1 < len(whole.histograms)
    assert served_share(index) == served_share(whole) and served_share(whole).tried > 0
    assert len(index.sessions) == 1 < len(whole.sessions)

    # A window the run never reached (it ended before): nothing in it, the same nothing.
    (run_dir / TIMELINE).write_text(json.dumps({"test_start_unix": first, "speed": 900 / (last - first) / 2}))
    whole, index = load_run(run_dir), load_run(run_dir, summary=True)
    assert whole.slo_seconds()[0] > last - first
    assert index.totals() == whole.totals() and not whole.totals().login_ms
    assert served_share(index) == served_share(whole) and served_share(whole).tried == 0


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda line: line + ",1", "25 fields, the header has 24"),
        (lambda line: "zero" + line[line.index(",") :], "'zero' is not a number in column Timestamp"),
        (lambda line: line[:10] + "\0" + line[10:], "NUL byte"),
    ],
)
def test_a_damaged_row_far_into_a_history_is_named(
    locust_run: Path, tmp_path: Path, damage: Callable[[str], str], expected: str
) -> None:
    path = tmp_path / HISTORY
    lines = grown_history(locust_run / HISTORY, path, 30_000)
    row = 25_000  # beyond the first block; rows are numbered as an editor shows them (the header is row 1)
    lines[row - 1] = damage(lines[row - 1])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError, match=rf"{HISTORY} row {row}: .*{expected}"):
        read_table(path, HISTORY_TABLE)


MEASURE = """
import shutil, sys, tracemalloc
from pathlib import Path
from schoolsurge.report.index import CACHE, write_index
warm_up, *folders = [Path(p) for p in sys.argv[1:]]
write_index(warm_up)  # what is loaded once (modules, templates) is not the index's memory
peaks = []
for folder in folders:
    tracemalloc.start()
    write_index(folder)
    peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
print(*peaks)
"""


def test_an_index_refresh_reads_a_huge_history_in_bounded_memory(locust_run: Path, tmp_path: Path) -> None:
    """One sibling's 114 MB history once took an index refresh to 1.75 GB: its memory grew ten times as fast as
    the file (and forty times as fast as the histograms file). Now four times as much costs it no more memory: it
    reads them a block, a line at a time."""
    folders, sizes = {}, {}
    for name, rows in (("warm-up", 0), ("medium", 50_000), ("big", 200_000)):
        folders[name] = tmp_path / name / "reports"
        run_dir = crafted_run(locust_run, folders[name], "20250101T000000Z-run")
        if rows:
            grown_history(locust_run / HISTORY, run_dir / HISTORY, rows)
            write_engine_files(run_dir, rows // 20)  # a second's histograms: 17 KB decoded
        files = (run_dir / HISTORY, run_dir / HISTOGRAMS, run_dir / SESSIONS_CSV)
        sizes[name] = sum(path.stat().st_size for path in files if path.exists())
    command = [sys.executable, "-c", MEASURE, *(str(folders[n]) for n in ("warm-up", "medium", "big"))]
    done = subprocess.run(command, timeout=DEADLINE_S, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    medium, big = (int(peak) for peak in done.stdout.split())
    print(f"index refresh peaks: {medium / 1e6:.1f} MB ({sizes['medium'] / 1e6:.0f} MB of files), ", end="")
    print(f"{big / 1e6:.1f} MB ({sizes['big'] / 1e6:.0f} MB of files)")
    assert big - medium < (sizes["big"] - sizes["medium"]) / 10, "the index's memory grows with the files it reads"
    assert "error ratio (07:30-08:30)" in (folders["big"] / INDEX).read_text(), "and it still judges the run"
