"""Run kinds as types: the engine picks a morning, a sweep or the closed model once, from the replay and the user
classes, and asks the kind what differs (its share, its clock, its scrapes, its manifest fields); nowhere else in
the engine, the personas or the models is the kind tested, and nothing outside the engine writes its state."""

from __future__ import annotations

import ast
import dataclasses
import json
import time
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from locust.env import Environment

from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.engine import Engine, PoolShape, SurgeAgent, SurgeContext, build_context, install
from schoolsurge.engine.closed import ClosedShare
from schoolsurge.engine.kinds import ClosedRun, MorningRun, SweepRun
from schoolsurge.engine.persona_users import Student, Teacher
from schoolsurge.engine.share import ProcessShare
from schoolsurge.models.sweep import SweepSettings
from schoolsurge.parameters import DRAIN_LIMIT_S
from schoolsurge.rundir import MANIFEST, Counter, RunKind

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "schoolsurge"
SMOKE = ROOT / "scenarios" / "smoke.yaml"
PICKER = PACKAGE / "engine" / "kinds" / "__init__.py"
# The classes whose instances a kind test would ask about.
KIND_CLASSES = {"Replay", "SweepReplay", "Share", "ProcessShare", "ClosedShare", "Kind", "MorningRun", "SweepRun"}
KIND_CLASSES |= {"ClosedRun"}


def _context(run_dir: Path | None = None) -> SurgeContext:
    options = {"run_dir": str(run_dir)} if run_dir else {}
    return build_context(Namespace(scenario=str(SMOKE), speed=240, **options))


def _sweep_context(run_dir: Path | None = None) -> SurgeContext:
    context = _context(run_dir)
    sweep = sweep_replay(context.scenario, SweepSettings(steps=3, measure_s=6.0), 2e-5, 240)
    return dataclasses.replace(context, replay=sweep)


@contextmanager
def installed(context: SurgeContext, *user_classes: type) -> Iterator[Engine]:
    environment = Environment(user_classes=list(user_classes), shape_class=PoolShape(), host="http://127.0.0.1:9")
    environment.create_local_runner()
    engine = install(environment, context)
    try:
        yield engine
    finally:
        engine.close()
        environment.runner.quit()


def test_a_morning_is_picked_from_the_agents_and_asked_for_its_clock_and_scrapes(tmp_path: Path) -> None:
    with installed(_context(tmp_path / "run"), SurgeAgent) as engine:
        assert type(engine.kind) is MorningRun and type(engine.share) is ProcessShare
        assert engine.kind.progress_clock(0.0) == "07:30" and engine.kind.scrape_every_s() == 5.0
        assert engine.kind.manifest_fields() == {"kind": RunKind.MORNING, "drain_limit_s": DRAIN_LIMIT_S}
    assert json.loads((tmp_path / "run" / MANIFEST).read_text())["kind"] == "morning"


def test_a_sweep_is_picked_from_its_replay(tmp_path: Path) -> None:
    with installed(_sweep_context(tmp_path / "run"), SurgeAgent) as engine:
        kind = engine.kind
        assert type(kind) is SweepRun and type(engine.share) is ProcessShare
        replay = engine.context.replay
        first_step = int((replay.schedule_arrays(engine.context.seed).at_s < replay.step_bounds(0)[2]).sum())
        assert (
            kind.progress_clock(0.0) == f"step 1/3 {replay.rates[0]:.2f}/s settling, its people 0/{first_step} arrived"
        )
        assert kind.scrape_every_s() == 2.0  # three scrapes in each step's 6 measured seconds
        assert kind.persona_users_refused is not None
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert manifest["kind"] == "sweep" and manifest["sweep"]["steps"] == 3


def test_the_progress_line_counts_a_refinement_steps_people(tmp_path: Path) -> None:
    """Issue 22: during a refinement step the line says the step's own people (chosen during the run, not in the
    plan), and the sweep's "arrived x/y" counts them in y once the step replaces the planned arrivals."""
    with installed(_sweep_context(tmp_path / "run"), SurgeAgent) as engine:
        kind, replay, share = engine.kind, engine.context.replay, engine.share
        share.assign(1, 0, start_unix=time.time())
        planned = engine.ledger().total(Counter.SCHEDULED)
        start_s = replay.step_bounds(2)[2] + 1.0  # after the planned steps
        step = kind.choose_refinement(replay.rates[1], start_s)
        kind.apply_schedule_change(step.to_wire())
        people = len(replay.refinement_arrays(engine.context.seed, step))
        assert people > 0
        assert engine.ledger().total(Counter.SCHEDULED) == planned + people
        assert kind.progress_clock(start_s + 0.5) == (
            f"refinement 1/{replay.refine_steps} {replay.rates[1]:.2f}/s settling, its people 0/{people} arrived"
        )
        engine.ledger().count(int(start_s) + 1, Counter.STARTED, 3)
        measured_from = replay.bounds_from(start_s)[1]
        assert kind.progress_clock(measured_from).endswith(f"/s, its people 3/{people} arrived")


def test_the_closed_model_is_picked_from_the_persona_users_and_makes_closed_shares(tmp_path: Path) -> None:
    with installed(_context(tmp_path / "run"), Student, Teacher) as engine:
        assert type(engine.kind) is ClosedRun and type(engine.share) is ClosedShare
        assert type(engine.new_share()) is ClosedShare, "every test's share is the closed model's"
        assert engine.share.take_on("student").arrival.group == "secondary-pupils"
        assert not engine.completed
        engine.kind.test_stopped()
        assert engine.completed, "a closed-model test that stops has run as planned"
    manifest = json.loads((tmp_path / "run" / MANIFEST).read_text())
    assert manifest["kind"] == "closed" and manifest["arrival_model"] == "closed"


def test_an_open_arrival_share_has_no_one_for_a_free_user_to_take_on() -> None:
    with installed(_context(), SurgeAgent) as engine, pytest.raises(LookupError):
        engine.share.take_on("student")


# ---- read from the source -----------------------------------------------------------------------------------


def _sources(*parts: str) -> Iterator[tuple[Path, ast.AST]]:
    for part in parts:
        for path in sorted((PACKAGE / part).rglob("*.py")):
            yield path, ast.parse(path.read_text(), str(path))


def _kind_tests(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """isinstance() against a replay, share or kind class; `.is_sweep`; a comparison with a `kind`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance":
            if any(isinstance(n, ast.Name) and n.id in KIND_CLASSES for n in ast.walk(node.args[1])):
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Attribute) and node.attr == "is_sweep":
            yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Compare):
            names = {n.attr if isinstance(n, ast.Attribute) else getattr(n, "id", "") for n in ast.walk(node)}
            if names & {"kind", "RunKind"}:
                yield node.lineno, ast.unparse(node)


def test_the_kind_is_tested_only_where_it_is_picked() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path, tree in _sources("engine", "personas", "models")
        if path != PICKER
        for line, text in _kind_tests(tree)
    ]
    assert not found, "\n".join(found)


def _engine_writes(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """`engine.x = ...`, `self.engine.x += ...`, `setattr(engine, ...)`."""

    def is_engine(node: ast.AST) -> bool:
        return (isinstance(node, ast.Name) and node.id == "engine") or (
            isinstance(node, ast.Attribute) and node.attr == "engine"
        )

    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        targets = [node.target] if isinstance(node, ast.AugAssign | ast.AnnAssign) else targets
        for target in targets:
            if isinstance(target, ast.Attribute) and is_engine(target.value):
                yield node.lineno, ast.unparse(node)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr" and is_engine(node.args[0]):
            yield node.lineno, ast.unparse(node)


def test_only_the_engine_writes_its_state() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path, tree in _sources(".")
        if path != PACKAGE / "engine" / "core.py"
        for line, text in _engine_writes(tree)
    ]
    assert not found, "\n".join(found)
