"""A teacher: at their start time, creates a virtual class for one of their classes (pupils gather in its
waiting room), opens it after a moment of preparation, and stays."""

from __future__ import annotations

from schoolsurge.personas.base import Behaviour
from schoolsurge.personas.virtual_class import stay_in_class


class TeacherBehaviour(Behaviour):
    persona = "teacher"

    def session(self) -> None:
        dashboard = self.platform.dashboard()
        if not dashboard.class_ids or self.rng.random() >= self.group.virtual_class:
            self.browse_until_deadline()
            return
        class_id = dashboard.class_ids[self.rng.randrange(len(dashboard.class_ids))]
        virtual_class = self.platform.schedule_virtual_class(class_id, "Cours du matin")
        self.think()  # setting up the lesson while pupils gather in the waiting room
        self.platform.open_virtual_class(virtual_class)
        stay_in_class(self, virtual_class)
        self.platform.leave_virtual_class(virtual_class)  # the teacher leaving ends the lesson
