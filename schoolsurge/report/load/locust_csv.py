"""Locust's CSV files, whatever `--csv` prefix wrote them, read with one-line errors that name file and row.

`locust --csv run1` writes run1_stats.csv, run1_stats_history.csv (only Locust's Aggregated rows unless
`--csv-full-history`), run1_failures.csv and run1_exceptions.csv; a schoolsurge run writes them with the prefix
"locust" (schoolsurge/rundir/layout.py). A damaged file (cut off mid-row, a garbage row, NUL bytes, not UTF-8, empty)
raises ReportError saying which row of which file, never a pandas traceback.

Rows are numbered as an editor or a spreadsheet shows them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NoReturn

import pandas as pd

from schoolsurge.errors import ReportError
from schoolsurge.files import open_regular
from schoolsurge.rundir import EXCEPTIONS_SUFFIX, FAILURES_SUFFIX, HISTORY_SUFFIX, LOCUST_PREFIX, STATS_SUFFIX

MISSING = ("", "N/A")  # Locust writes N/A for a percentile of an entry without requests
RERUN = "the file is damaged; rerun the test to get it again"
# Read and checked a block at a time: memory follows the block, not the file (a 3-hour run's history is 50 MB).
BLOCK_BYTES = 1 << 20
MAX_ROW_BYTES = 16 << 20  # no row of Locust's comes near: a longer one is a damaged file


@dataclass(frozen=True)
class LocustFiles:
    """One run's Locust CSV files (all but the statistics may not exist)."""

    prefix: str
    stats: Path
    history: Path
    failures: Path
    exceptions: Path


def find_locust_files(run_dir: Path) -> LocustFiles:
    """The run's `<prefix>_stats.csv` and its siblings: prefix "locust" when present (a schoolsurge run, which a
    plain `--csv` of its own may sit beside), else the only prefix there is."""
    prefixes = sorted(path.name.removesuffix(STATS_SUFFIX) for path in run_dir.glob(f"*{STATS_SUFFIX}"))
    if LOCUST_PREFIX in prefixes:
        prefix = LOCUST_PREFIX
    elif len(prefixes) == 1:
        prefix = prefixes[0]
    elif not prefixes:
        raise ReportError(
            f"{run_dir}: no Locust statistics (*{STATS_SUFFIX}): the run wrote none (stopped before it started?) "
            "or this is not a run directory; pass a folder under reports/, or where `locust --csv PREFIX` wrote "
            f"PREFIX{STATS_SUFFIX}"
        )
    else:
        listed = ", ".join(f"{p}{STATS_SUFFIX}" for p in prefixes)
        raise ReportError(
            f"{run_dir}: statistics of several Locust runs ({listed}); move each run to its own directory"
        )
    return LocustFiles(
        prefix,
        run_dir / f"{prefix}{STATS_SUFFIX}",
        run_dir / f"{prefix}{HISTORY_SUFFIX}",
        run_dir / f"{prefix}{FAILURES_SUFFIX}",
        run_dir / f"{prefix}{EXCEPTIONS_SUFFIX}",
    )


@dataclass(frozen=True)
class Table:
    """What a CSV file must hold. Columns not in `text` are numbers (empty or N/A allowed, unless `filled`)."""

    what: str  # "request statistics": said in errors
    required: frozenset[str]  # must be in the header
    text: frozenset[str] = frozenset({"Type", "Name"})
    filled: frozenset[str] = frozenset()  # numbers every row must have
    min_rows: int = 0


def read_table(path: Path, table: Table) -> pd.DataFrame:
    """The file as a DataFrame, numbers as numbers; ReportError (one line: file, row, what is wrong) otherwise."""
    frames = list(iter_table(path, table))
    if sum(len(frame) for frame in frames) < table.min_rows:
        raise ReportError(f"{path}: header only, no rows (not even Locust's Aggregated total); {RERUN}")
    return frames[0] if len(frames) == 1 else pd.concat(frames)


def iter_table(path: Path, table: Table) -> Iterator[pd.DataFrame]:
    """The file a block of rows at a time, each checked as read_table checks the whole file (errors name the row
    in the whole file) and indexed by its rows' positions in the file: a reader that keeps a few rows of a large
    file (the index) holds a block in memory, never the file."""
    try:
        handle = open_regular(path)
    except OSError as error:
        raise ReportError(f"{path}: cannot read the {table.what} ({error.strerror or error})") from None
    header = b""
    first_row = 2  # the file's row of the block's first data row
    position = 0  # the file's data rows before the block
    with handle:
        for raw, last in _blocks(path, handle):
            if not header:
                if last and not raw.strip():
                    raise ReportError(f"{path}: empty file, not even a header row; {RERUN}")
                header = raw[: raw.find(b"\n") + 1] or raw + b"\n"
                raw = raw[len(header) :]
            elif not raw and position:  # the file ended with the previous block
                return
            frame = _parse_block(path, table, header + raw, first_row - 2)
            frame.index = pd.RangeIndex(position, position + len(frame))
            position += len(frame)
            first_row += raw.count(b"\n")
            yield frame


def _blocks(path: Path, handle: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """The file in blocks of whole rows, about BLOCK_BYTES each, the last one flagged (it may be empty)."""
    pending = b""
    while chunk := handle.read(BLOCK_BYTES):
        pending += chunk
        cut = _rows_end(pending)
        if cut:
            yield pending[:cut], False
            pending = pending[cut:]
        elif len(pending) > MAX_ROW_BYTES:
            raise ReportError(f"{path}: a row longer than {MAX_ROW_BYTES >> 20} MB (a quote left open?); {RERUN}")
    yield pending, True


def _rows_end(data: bytes) -> int:
    """The length of the whole rows at the start of `data` (which starts a row): up to its last newline outside
    a quoted field, where an even number of quotes comes before it; 0 when there is none."""
    end = data.rfind(b"\n")
    odd = data.count(b'"', 0, end) % 2 if end >= 0 else 0
    while odd and end >= 0:
        previous = data.rfind(b"\n", 0, end)
        odd ^= data.count(b'"', max(previous, 0), end) % 2
        end = previous
    return end + 1


def _parse_block(path: Path, table: Table, raw: bytes, row_offset: int) -> pd.DataFrame:
    """The header and a block of the file's rows as a DataFrame; a row of the block is row_offset + its row in
    the block (the header being row 1)."""
    nul = raw.find(b"\0")
    if nul >= 0:
        raise ReportError(f"{path} row {_row_at(raw, nul, row_offset)}: NUL byte; {RERUN}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        raise ReportError(
            f"{path} row {_row_at(raw, error.start, row_offset)}: byte 0x{byte:02x} is not UTF-8 text; {RERUN}"
        ) from None
    header, rows = _structure(path, text, row_offset)
    missing = table.required - set(header)
    if missing:
        raise ReportError(
            f"{path} row 1: not a {table.what} header (no {', '.join(sorted(missing))}); "
            "the file is damaged or not Locust's; rerun the test to get it again"
        )
    numbers = [column for column in header if column not in table.text]
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            keep_default_na=False,
            na_values={column: list(MISSING) if column in numbers else [""] for column in header},
            dtype=dict.fromkeys(table.text & set(header), str),
        )
    except (ValueError, pd.errors.ParserError, csv.Error) as error:  # the checks above should leave none
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ReportError(f"{path}: unreadable {table.what} ({reason}); {RERUN}") from None
    row_of = rows.__getitem__ if len(rows) == len(frame) else lambda i: i + 2 + row_offset
    for column in numbers:
        if column not in frame.columns:  # a duplicated header name, renamed by pandas
            continue
        values = frame[column]
        if not pd.api.types.is_numeric_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            wrong = converted.isna() & values.notna()
            if wrong.any():
                position = int(wrong.to_numpy().argmax())
                value = str(values.iloc[position])
                shown = repr(value if len(value) <= 40 else value[:40] + "...")
                raise ReportError(f"{path} row {row_of(position)}: {shown} is not a number in column {column}; {RERUN}")
            frame[column] = values = converted
        if column in table.filled and values.isna().any():
            position = int(values.isna().to_numpy().argmax())
            raise ReportError(f"{path} row {row_of(position)}: no value in column {column}; {RERUN}")
    return frame


def _row_at(raw: bytes, offset: int, row_offset: int) -> int:
    row = raw.count(b"\n", 0, offset) + 1
    return row if row == 1 else row + row_offset


def _structure(path: Path, text: str, row_offset: int = 0) -> tuple[list[str], list[int]]:
    """The header, and the row (line) each data record starts on, plus row_offset; every record has as many
    fields as the header (a file cut off mid-row has fewer in its last)."""
    if '"' not in text:  # no quoted field (Locust's history, usually): count commas, 10x faster than csv
        lines = text.split("\n")
        header = next(csv.reader([lines[0].rstrip("\r")]))
        commas = len(header) - 1
        starts = []
        for number, line in enumerate(lines[1:], start=2):
            if line.count(",") != commas:
                if not line.strip():  # a blank line (pandas skips it too), or the final newline
                    continue
                last = number == len(lines)
                _wrong_fields(path, number + row_offset, line.count(",") + 1, len(header), last)
            starts.append(number + row_offset)
        return header, starts
    reader = csv.reader(io.StringIO(text, newline=""))
    starts = []
    try:
        header = next(reader)
        end = reader.line_num
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue
            if len(record) != len(header):
                last = not text.endswith("\n") and end == text.count("\n") + 1
                _wrong_fields(path, start + row_offset, len(record), len(header), last)
            starts.append(start + row_offset)
    except csv.Error as error:
        raise ReportError(f"{path} row {reader.line_num + row_offset}: {error}; {RERUN}") from None
    return header, starts


def _wrong_fields(path: Path, row: int, fields: int, expected: int, last: bool) -> NoReturn:
    cut = " (the file ends mid-row: was the test stopped while Locust wrote it?)" if last and fields < expected else ""
    count = f"{fields} field{'s' if fields != 1 else ''}"
    raise ReportError(f"{path} row {row}: {count}, the header has {expected}{cut}; {RERUN}")
