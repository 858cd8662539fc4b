"""The run's answer, as a capacity planner reads it first: did the peak hold, who got in, the capacity with its
range, the instances the national morning needs, what binds, and how firm that is.

    answer = read_answer(run_dir)      # answer.json, written beside the report (report/capacity/answer.py)
    answer.lines()                     # the 5-8 lines the console ends with, the report, index and comparison show

Every figure in it is defined once (rundir/figures.py): held and broke on the load offered (people arriving to
log in per second), time to log in over everyone who tried. The schema of answer.json: docs/capacity.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.files import read_regular_text, readable
from schoolsurge.report.outcome.health import invalid_line
from schoolsurge.rundir import ANSWER_JSON, write_json

ANSWER_VERSION = 1


@dataclass(frozen=True)
class Capacity:
    """Where the objectives stop being met, on offered load (`unit`: a sweep's people arriving per second, a
    morning's login attempts per second, first tries and retries)."""

    held_per_s: float | None  # run terms: the highest offered load that held, below the lowest that broke
    broke_per_s: float | None  # run terms: the lowest offered load that broke
    held_per_s_national: float | None
    broke_per_s_national: float | None
    within: float | None  # (broke - held) / held
    measured_on: str  # "minutes of the morning", "sweep steps", "Locust's request rate"
    unit: str = "people arriving to log in per second"  # what is offered


@dataclass(frozen=True)
class Instances:
    """Copies of the tested platform the national morning needs: ceil(peak offered x (1 + headroom) / capacity)."""

    needed: int | None  # from the lower end of the capacity range (the load that held): the safe count
    fewest: int | None  # from the upper end (the load that broke): fewer cannot do
    headroom: float
    peak_per_s_national: float | None  # the morning's peak of people arriving to log in per second (1-min mean)
    peak_at: str | None


@dataclass(frozen=True)
class Served:
    served: int
    tried: int
    share: float
    window: str
    population: str  # who `tried` is
    # 2021's population in this run (its people of the whole replayed morning who came for a virtual class, and of
    # them those who reached one) beside 2021's figure when the scenario stands for 2021; None when neither can be
    # said
    reference: str | None
    came_for_virtual_class: int | None = None  # None: the run did not record it (an earlier version)
    reached_virtual_class: int | None = None
    virtual_class_share: float | None = None  # reached / came
    virtual_class_window: str | None = None  # when they came: the replayed morning, `07:00-10:00`


@dataclass
class Answer:
    kind: str  # "run", "sweep" or "locust" (a plain Locust CSV folder)
    held: bool | None  # held the SLO window's peak; None: not determined
    held_text: str  # one sentence: held or not, SLOs met n of m
    slos_met: int = 0
    slos_judged: int = 0
    served: Served | None = None
    capacity: Capacity | None = None
    capacity_text: str = ""
    instances: Instances | None = None
    instances_text: str = ""
    binds: str = ""  # one sentence naming the figure, or "not determined: <reason>"
    binds_determined: bool = False
    confidence: str = ""
    version: int = ANSWER_VERSION
    notes: list[str] = field(default_factory=list)
    invalid: str | None = None  # why the run measured something else than the platform (report/outcome/health.py)

    def lines(self) -> list[str]:
        """The answer in 5-8 lines, the same everywhere it is shown; an invalid run's says so first (no false
        green: its figures are the generator's, the machine's or the client's, not the platform's)."""
        lines = [invalid_line(self.invalid)] if self.invalid else []
        lines.append(f"Held the peak: {self.held_text}")
        if self.served is not None:
            served = self.served
            reference = f"; {served.reference}" if served.reference else ""
            lines.append(
                f"Who got in: {served.share:.0%} ({served.served:,} of {served.tried:,} {served.population}, "
                f"{served.window}){reference}"
            )
        lines.append(f"Capacity: {self.capacity_text}")
        if self.instances_text:
            lines.append(f"Instances: {self.instances_text}")
        lines.append(f"What binds: {self.binds}")
        lines.append(f"Confidence: {self.confidence}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "lines": self.lines()}


def write_answer(run_dir: Path, answer: Answer) -> Path:
    path = Path(run_dir) / ANSWER_JSON
    write_json(path, answer.to_json())
    return path


def read_answer(run_dir: Path) -> Answer | None:
    """answer.json of a run directory; None when it has none or it is not one this version reads."""
    path = Path(run_dir) / ANSWER_JSON
    if not readable(path):
        return None
    try:
        raw = json.loads(read_regular_text(path))
        raw.pop("lines", None)
        served = raw.pop("served", None)
        capacity = raw.pop("capacity", None)
        instances = raw.pop("instances", None)
        return Answer(
            **raw,
            served=Served(**served) if served else None,
            capacity=Capacity(**capacity) if capacity else None,
            instances=Instances(**instances) if instances else None,
        )
    except (ValueError, TypeError):
        return None
