"""The whiteboard holds: which package may import which, read from the source (ast, nothing imported or run).

Every import counts, at the top of a module or inside a function, for annotations only (TYPE_CHECKING) or not: an
arrow drawn for the type checker is an arrow a reader follows. The run directory is the one seam between the
engine and the report; the scenario needs no model, the models no accounts; the personas know the engine only
through their own narrow interface (personas/interface.py, which the engine implements) and the platform only
through a client; the reference platform knows nothing of the load generator.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "schoolsurge"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(module: str, path: Path) -> Iterator[str]:
    """The schoolsurge modules a module imports (`from package import name` is the module package.name when
    there is one, else the package)."""
    modules = _modules()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("schoolsurge.") and name != module:
                yield name


def _part(module: str) -> str:
    """The part of schoolsurge a module belongs to: its subpackage, or the top-level module itself."""
    return module.split(".")[1]


@cache
def _arrows() -> dict[tuple[str, str], set[str]]:
    """(from part, to part) -> the imports drawing that arrow, as "importer -> imported"."""
    arrows: dict[tuple[str, str], set[str]] = {}
    for module, path in _modules().items():
        for imported in _imported(module, path):
            if _part(module) != _part(imported):
                arrows.setdefault((_part(module), _part(imported)), set()).add(f"{module} -> {imported}")
    return arrows


FORBIDDEN = [
    pytest.param("engine", "report", id="engine->report"),
    pytest.param("report", "engine", id="report->engine"),
    pytest.param("models", "accounts", id="models->accounts"),
    pytest.param("scenario", "models", id="scenario->models"),
    pytest.param("personas", "locustfile", id="personas->locustfile"),
    pytest.param("personas", "engine", id="personas->engine"),
    pytest.param("personas", "platform", id="personas->platform"),
    pytest.param("platform", "engine", id="platform->engine"),
    pytest.param("platform", "personas", id="platform->personas"),
    pytest.param("platform", "clients", id="platform->clients"),
    pytest.param("platform", "report", id="platform->report"),
]


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_no_forbidden_arrow(importer: str, imported: str) -> None:
    assert _modules(), f"no module found under {PACKAGE}"
    drawn = sorted(_arrows().get((importer, imported), ()))
    assert not drawn, "imports drawing the arrow:\n" + "\n".join(drawn)


def test_the_graph_sees_the_arrows_it_must() -> None:
    """The reader finds arrows that exist (a graph read wrong would let every test above pass)."""
    arrows = _arrows()
    assert "schoolsurge.engine.agent -> schoolsurge.personas" in arrows[("engine", "personas")]
    assert "schoolsurge.personas.base -> schoolsurge.personas.interface" not in str(arrows)  # same part: no arrow
    assert ("personas", "clients") in arrows and ("models", "scenario") in arrows
    assert ("platform", "accounts") in arrows  # `from schoolsurge import accounts`
