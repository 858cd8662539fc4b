"""The report reads run directories and nothing else: importing it (or any of its parts) in a fresh interpreter
loads neither Locust nor gevent, whose import patches the process (gevent's monkey patching, Locust's
runners). Building a report offline must not need the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import schoolsurge

REPORT = Path(schoolsurge.__file__).resolve().parent / "report"
PACKAGES = ["schoolsurge.report"] + sorted(
    "schoolsurge.report." + init.parent.relative_to(REPORT).as_posix().replace("/", ".")
    for init in REPORT.rglob("__init__.py")
    if init.parent != REPORT
)
ENGINE_MODULES = ("locust", "gevent")


@pytest.mark.parametrize("package", PACKAGES)
def test_importing_the_report_loads_neither_locust_nor_gevent(package: str) -> None:
    probe = f"import sys, {package}; print(sorted(m for m in {ENGINE_MODULES!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]", f"import {package} loads {loaded.stdout.strip()}"
