"""The report reads run directories and nothing else: importing it (or any of its parts) in a fresh interpreter
loads neither Locust nor gevent, whose import patches the process (gevent's monkey patching, Locust's
runners). Building a report offline must not need the engine."""

from __future__ import annotations

import ast
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


def _report_imports() -> dict[str, set[str]]:
    """Module -> the modules of the report it imports, by any import statement (module level, in a function, under
    TYPE_CHECKING), read with `ast`; a subpackage's __init__ (its public names) is left out, as it only
    re-exports."""
    modules = {
        ".".join(("schoolsurge", "report", *path.relative_to(REPORT).with_suffix("").parts)): path
        for path in REPORT.rglob("*.py")
        if path.name != "__init__.py"
    }
    imports: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                named = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                continue
            imports[module] |= {name for name in named if name in modules and name != module}
    return imports


def _loop(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph (its nodes, the first repeated at the end), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for imported in sorted(graph.get(node, ())):
            if (cycle := visit(imported, [*path, node])) is not None:
                return cycle
        done.add(node)
        return None

    return next((cycle for node in sorted(graph) if (cycle := visit(node, [])) is not None), None)


def test_the_report_parts_import_each_other_without_a_loop() -> None:
    imports = _report_imports()
    part = {module: module.split(".")[2] for module in imports}  # load, capacity, run... or a top-level module
    parts: dict[str, set[str]] = {}
    for module, imported in imports.items():
        parts.setdefault(part[module], set()).update(part[name] for name in imported if part[name] != part[module])
    assert _loop(imports) is None, f"modules import each other: {' -> '.join(_loop(imports) or [])}"
    assert _loop(parts) is None, f"parts of the report import each other: {' -> '.join(_loop(parts) or [])}"
