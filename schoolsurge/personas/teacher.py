"""A teacher: at their start time, creates a virtual class for one of their classes (pupils gather in its
waiting room), opens it after a moment of preparation, and stays."""

from __future__ import annotations

from schoolsurge.clients.base import Dashboard
from schoolsurge.personas.base import Behaviour
from schoolsurge.personas.virtual_class import stay_in_class


class TeacherBehaviour(Behaviour):
    persona = "teacher"

    def session(self) -> None:
        dashboard = self.platform.dashboard()
        if dashboard.class_ids and self.rng.random() < self.group.virtual_class and self.hold_virtual_class(dashboard):
            return
        self.browse_until_deadline()

    def hold_virtual_class(self, dashboard: Dashboard) -> bool:
        """Create, open and hold a virtual class; False when the client offers no virtual classes."""
        class_id = dashboard.class_ids[self.rng.randrange(len(dashboard.class_ids))]
        virtual_class = self.optional(self.platform.schedule_virtual_class, class_id, "Cours du matin")
        if virtual_class is None:
            return False
        self.think()  # setting up the lesson while pupils gather in the waiting room
        self.optional(self.platform.open_virtual_class, virtual_class)
        stay_in_class(self, virtual_class)
        self.optional(self.platform.leave_virtual_class, virtual_class)  # the teacher leaving ends the lesson
        return True
