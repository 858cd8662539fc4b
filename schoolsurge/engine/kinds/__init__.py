"""Kinds of run as the engine runs them, one class each, picked once (pick_kind, the only place that asks):

- `MorningRun` (morning.py): the scenario's window replayed as open arrivals on its schedule;
- `SweepRun` (sweep.py): a capacity sweep, the scenario's mix at a constant rate per step, with its stop rule
  and capacity.csv;
- `ClosedRun` (closed.py): the closed model, persona user classes taking people on as they are free.

The engine reaches its kind as `engine.kind`; what differs between kinds is a method of Kind (base.py), never a
test of which kind runs. To add a kind: its name in rundir's RunKind, a subclass of Kind (or of the kind it most
resembles) in a file of its own overriding what differs, and its case in pick_kind; the report picks its own
sections from the manifest's `kind` (report/).
"""

from __future__ import annotations

from collections.abc import Iterable

from schoolsurge.engine.kinds.base import EngineView, Kind
from schoolsurge.engine.kinds.closed import ClosedRun
from schoolsurge.engine.kinds.morning import MorningRun
from schoolsurge.engine.kinds.sweep import SweepRun
from schoolsurge.models.sweep import SweepReplay


def pick_kind(engine: EngineView, user_classes: Iterable[type]) -> Kind:
    """The kind of the engine's run: a sweep by its replay; the closed model by its Locust user classes (persona
    users, which take people on as they are free: `closed_model`); otherwise a morning."""
    replay = engine.context.replay
    if isinstance(replay, SweepReplay):
        return SweepRun(engine, replay)
    if any(getattr(user_class, "closed_model", False) for user_class in user_classes):
        return ClosedRun(engine)
    return MorningRun(engine)


__all__ = ["ClosedRun", "EngineView", "Kind", "MorningRun", "SweepRun", "pick_kind"]
