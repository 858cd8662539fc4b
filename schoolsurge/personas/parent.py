"""A parent: one account for all their children; looks at each child's timetable and homework."""

from __future__ import annotations

from schoolsurge.personas.base import Behaviour, Steps


class ParentBehaviour(Behaviour):
    persona = "parent"

    def session(self) -> Steps[None]:
        dashboard = yield from self.dashboard()
        if not dashboard.child_ids:  # a platform that shows no children: the parent just reads
            yield from self.browse_until_deadline()
            return
        for child in dashboard.child_ids:
            if not (yield from self.think()):
                return
            yield from self.step(self.platform.timetable, child)
            yield from self.step(self.platform.homework, child)
        while (yield from self.think()):
            yield from self.browse(dashboard.child_ids[self.rng.randrange(len(dashboard.child_ids))])
