"""reports/index.html: every run directory under reports/, newest first, and the comparisons written there.

    write_index(Path("reports"))   # -> reports/index.html

A row per run directory (a folder with a manifest.json or Locust's CSV files): scenario, start, status, kind (run,
sweep, plain locust), platform profile, scale and speed, SLO verdicts (a sweep: its steps that met them and its
SLO capacity), the share of people served, and links to its report.html and to the compare.html files that
include it. A folder that cannot be read is listed as "unreadable: <reason>", never fatal.

It is written after every run, report and comparison, so it must be fast and never rebuild a report. What a
row needs beyond the manifest (the verdicts and served share, which take the run's histograms and statistics) is
computed once per run and kept in reports/.index-cache.json, keyed by the size and time of the files it was
computed from: a run is read again only when one of them changes. Nothing is written into the run directories.

A folder beside the others may be anything: of a run it reads only what the row needs, its large files a block
or a line at a time (`load_run(summary=True)`: its memory does not grow with them), and a file that is not a
regular file (a FIFO would block it forever, a link lead anywhere) is skipped, with a note in the row. Several
processes may write the index at once (schoolsurge/files.py: each its own temporary file; the last one wins).

    summary.py   one run's row: its manifest's facts, verdicts (a sweep: its steps and SLO capacity), who got in
    rows.py      every run directory's row (cached) and the comparisons found there
    page.py      the page
"""

from schoolsurge.report.index.page import INDEX, write_index
from schoolsurge.report.index.rows import CACHE, index_rows
from schoolsurge.report.index.summary import summarize_run

__all__ = ["CACHE", "INDEX", "index_rows", "summarize_run", "write_index"]
