"""A parent: one account for all their children; looks at each child's timetable and homework."""

from __future__ import annotations

from schoolsurge.personas.base import Behaviour


class ParentBehaviour(Behaviour):
    persona = "parent"

    def session(self) -> None:
        dashboard = self.dashboard()
        if not dashboard.child_ids:  # a platform that shows no children: the parent just reads
            self.browse_until_deadline()
            return
        for child in dashboard.child_ids:
            if not self.think():
                return
            self.step(self.platform.timetable, child)
            self.step(self.platform.homework, child)
        while self.think():
            self.browse(dashboard.child_ids[self.rng.randrange(len(dashboard.child_ids))])
