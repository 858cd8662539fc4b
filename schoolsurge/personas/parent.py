"""A parent: one account for all their children; looks at each child's timetable and homework."""

from __future__ import annotations

from schoolsurge.personas.base import Behaviour


class ParentBehaviour(Behaviour):
    persona = "parent"

    def session(self) -> None:
        dashboard = self.platform.dashboard()
        for child in dashboard.child_ids:
            if not self.think():
                return
            self.platform.timetable(child)
            self.platform.homework(child)
        while dashboard.child_ids and self.think():
            self.browse(dashboard.child_ids[self.rng.randrange(len(dashboard.child_ids))])
