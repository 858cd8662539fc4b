"""time_to_login.jsonl: a run's raw latency histograms, one JSON line per run second, so that any window can be
merged later.

    {"second": 12, "time_to_login": "<base64 HdrHistogram>", "request_latency": "<base64 HdrHistogram>"}

`time_to_login` holds the time to log in of the people due that second (by cohort, from their intended
arrival), `request_latency` the latency of people's HTTP requests completed that second (event time); a line
carries the ones that have values. HdrHistograms of 1 ms to 1 hour at 2 significant digits (about 1% error):
histograms of several seconds, or of several processes, add up exactly (`merged`).

The engine's ledger records and writes them (engine/ledger.py); the report and the capacity sweep read them
(`read_histograms`, `iter_histograms`); a window's login percentile is defined once in figures.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from hdrh.histogram import HdrHistogram

from schoolsurge.files import open_regular_text

# Time to log in and request latency, milliseconds: 1 ms to 1 hour at 2 significant digits (about 1% error).
HISTOGRAM_RANGE_MS = (1, 3_600_000)
HISTOGRAM_DIGITS = 2
HISTOGRAM_FIELDS = ("time_to_login", "request_latency")  # as named in the file (and in SecondMetrics)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*HISTOGRAM_RANGE_MS, HISTOGRAM_DIGITS)


def encode_histogram(histogram: HdrHistogram) -> str:
    return base64.b64encode(histogram.encode()).decode("ascii")


def decode_histogram(text: str) -> HdrHistogram:
    return HdrHistogram.decode(base64.b64decode(text))


def histogram_line(second: int, encoded: dict[str, str]) -> str:
    """One line of the file: a second's encoded histograms by field name (HISTOGRAM_FIELDS)."""
    return json.dumps({"second": second, **encoded}) + "\n"


def merged(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    total = new_histogram()
    for histogram in histograms:
        total.add(histogram)
    return total


def read_histograms(path: Path, name: str = "time_to_login") -> dict[int, HdrHistogram]:
    """Per-second histograms of one kind (time_to_login or request_latency) (a second written twice counts
    twice); ValueError names a corrupt line."""
    histograms: dict[int, HdrHistogram] = {}
    for second, histogram in iter_histograms(path, name):
        if second in histograms:
            histogram = merged((histograms[second], histogram))
        histograms[second] = histogram
    return histograms


def iter_histograms(path: Path, name: str = "time_to_login") -> Iterator[tuple[int, HdrHistogram]]:
    """read_histograms a line at a time, for a reader that merges them as they come."""
    with open_regular_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                if name not in record:
                    continue
                histogram = decode_histogram(record[name])
                second = int(record["second"])
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"line {number} is not a histogram record ({error})") from None
            yield second, histogram
