"""The capacity answer of a run, the first thing its report says: how much load this platform holds with every
SLO met, and what that means for the national morning.

Why first: a planner wants "7 instances with 30% headroom", not p95 at 08:12; the charts and tables below it are
there to check the answer. A capacity sweep (`schoolsurge capacity`, capacity.csv) gives the whole answer
(sweep.py, SweepCard): the USL fit of throughput against people in a session (its peak N*), the knee of latency
against throughput, the SLO capacity and, against the scenario's national demand, the instances needed. A normal
run gives a shorter one (run.py, RunCard): the highest load it held for a few minutes in a row with every SLO
met, the lowest at which they broke, and the share of people who logged in within the objective, against
6 April 2021.

Run terms are this run's people and clock. National terms divide rates by the load fraction (scale x speed) and
people by the scale. Every figure of a sentence says which it is (wording.py).

    card.py         CapacityCard: what every card holds, run and national terms
    sweep_card.py   SweepCard: a sweep's sentences, table, steps and part of capacity.json
    run_card.py     RunCard: a normal run's
    sweep.py        a sweep's card from its steps: USL fit, knee, SLO capacity, national answer
    run.py          a normal run's card from its sessions, binned by about one scenario minute
    answer.py       capacity_card(data), and capacity.json beside the report
    charts.py       a sweep's three charts, and the charts of the capacity section
    demand_chart.py the national morning's demand against the answer's capacity (a run's)
"""

from schoolsurge.report.capacity.answer import capacity_card, capacity_json, write_capacity_json
from schoolsurge.report.capacity.card import CapacityCard, RunFigures, RunLoad, objective_limits
from schoolsurge.report.capacity.run import run_card
from schoolsurge.report.capacity.sweep import sweep_card
from schoolsurge.report.load.capacity_steps import load_capacity_steps

__all__ = [
    "CapacityCard",
    "RunFigures",
    "RunLoad",
    "capacity_card",
    "capacity_json",
    "load_capacity_steps",
    "objective_limits",
    "run_card",
    "sweep_card",
    "write_capacity_json",
]
