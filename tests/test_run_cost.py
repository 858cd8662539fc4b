"""What every run pays before and after its replay stays small: no process of a run imports what it does not use.
The command line and a morning's report leave out what only a capacity sweep's fit needs (scipy, kneed: about a
second of CPU per `schoolsurge` process), the embedded platform's supervisor what only its workers or a first
seeding need (FastAPI, Faker: a third of a second on the way of every start)."""

from __future__ import annotations

import json
import subprocess
import sys

FIT_ONLY = ("scipy", "kneed")  # the USL fit and the knee of a sweep


def _loaded_after(code: str, packages: tuple[str, ...] = FIT_ONLY) -> list[str]:
    loaded_packages = f"sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r})"
    probe = f"import json, sys\n{code}\nprint(json.dumps({loaded_packages}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(loaded.stdout.strip().splitlines()[-1])


def test_starting_a_run_and_building_its_report_import_nothing_only_a_fit_needs() -> None:
    modules = "schoolsurge.cli, schoolsurge.runner, schoolsurge.conclude, schoolsurge.report.run.build"
    assert _loaded_after(f"import {modules}") == []


def test_the_platforms_supervisor_imports_neither_the_web_framework_nor_the_seed_generator() -> None:
    """Its workers serve (FastAPI) and only a first start seeds (Faker): the supervisor, on the way of every
    start, needs neither."""
    assert _loaded_after("import schoolsurge.platform.__main__", ("fastapi", "faker")) == []
