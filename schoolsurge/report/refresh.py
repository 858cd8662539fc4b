"""reports/index.html follows every run, report and comparison written; an index that cannot be written is
logged and never fails the run or the report it follows."""

from __future__ import annotations

import logging
from pathlib import Path

from schoolsurge.errors import SchoolsurgeError

log = logging.getLogger(__name__)


def refresh_index(reports_dir: Path) -> None:
    try:
        from schoolsurge.report.index.page import write_index

        write_index(reports_dir)
    except (ImportError, OSError, SchoolsurgeError) as error:
        log.warning("reports index not updated in %s: %s", reports_dir, error)
