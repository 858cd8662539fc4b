"""A teacher: at their start time, creates a virtual class for their first class (pupils gather in its waiting
room), opens it after a moment of preparation, and stays; otherwise reads and browses."""

from __future__ import annotations

from schoolsurge.clients.base import Dashboard
from schoolsurge.personas.base import Behaviour, Steps
from schoolsurge.personas.virtual_class import stay_in_class
from schoolsurge.rundir import Counter


class TeacherBehaviour(Behaviour):
    persona = "teacher"

    def session(self) -> Steps[None]:
        dashboard = yield from self.dashboard()
        if dashboard.class_ids and self.comes_for_virtual_class() and (yield from self.hold_virtual_class(dashboard)):
            return
        yield from self.browse_until_deadline()

    def comes_for_virtual_class(self) -> bool:
        """Exactly round(n x share) of the group's n people hold one: its first people. With the embedded
        platform's accounts they teach, one class each, the secondary classes whose pupils log in (the seeded
        roster lists those first), so every virtual class has pupils to join it, as in 2021."""
        held = round(self.context.replay.people_of(self.group) * self.group.virtual_class)
        return self.person < held

    def hold_virtual_class(self, dashboard: Dashboard) -> Steps[bool]:
        """Create, open and hold a virtual class; False when the client offers no virtual classes."""
        virtual_class = yield from self.step(
            self.platform.schedule_virtual_class, dashboard.class_ids[0], "Cours du matin"
        )
        if virtual_class is None:
            return False
        yield from self.think()  # setting up the lesson while pupils gather in the waiting room
        yield from self.step(self.platform.open_virtual_class, virtual_class)
        self.share.ledger.count(self.cohort_second, Counter.VIRTUAL_CLASSES_OPENED)
        yield from stay_in_class(self, virtual_class)
        yield from self.step(self.platform.leave_virtual_class, virtual_class)  # the teacher leaving ends the lesson
        return True
