"""What every run pays before and after its replay stays small: the command line and a morning's report do not
import what only a capacity sweep's fit needs (scipy, kneed: about a second of CPU per process, paid by every
`schoolsurge` command, every run and every report)."""

from __future__ import annotations

import json
import subprocess
import sys

FIT_ONLY = ("scipy", "kneed")  # the USL fit and the knee of a sweep


def _loaded_after(code: str) -> list[str]:
    loaded_packages = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(FIT_ONLY)!r})"
    probe = f"import json, sys\n{code}\nprint(json.dumps({loaded_packages}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(loaded.stdout.strip().splitlines()[-1])


def test_starting_a_run_and_building_its_report_import_nothing_only_a_fit_needs() -> None:
    modules = "schoolsurge.cli, schoolsurge.runner, schoolsurge.conclude, schoolsurge.report.run.build"
    assert _loaded_after(f"import {modules}") == []
