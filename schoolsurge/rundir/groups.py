"""groups.csv: who got in, per scenario group (pupils by level, teachers, parents). One row per cohort second and
group that had people in it: of the group's people whose intended arrival fell in that second, those counted by
GROUP_COUNTERS (the same counters as sessions.csv's, split by group: summed over groups, they are sessions.csv's).
The engine's ledger writes it (engine/ledger.py); the report reads it (served share per group)."""

from __future__ import annotations

from schoolsurge.rundir.sessions import Counter

GROUP_COUNTERS = (
    Counter.STARTED,
    Counter.LOGINS_SUCCEEDED,
    Counter.ABANDONED,
    Counter.UNFINISHED,
    Counter.CAME_FOR_VIRTUAL_CLASS,
)
GROUPS_COLUMNS = ("second", "group", *GROUP_COUNTERS)
