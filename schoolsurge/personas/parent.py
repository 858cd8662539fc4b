"""A parent: one account for all their children; checks each child's timetable and homework."""

from __future__ import annotations

from schoolsurge.personas.base import Person


class ParentUser(Person):
    persona = "parent"

    def session(self, deadline: float) -> None:
        dashboard = self.platform.dashboard()
        for child in dashboard.child_ids:
            if not self.think(deadline):
                return
            self.platform.timetable(child)
            self.platform.homework(child)
