"""A teacher: opens their own virtual class for one of their classes and stays in it."""

from __future__ import annotations

from schoolsurge.personas.base import Person
from schoolsurge.personas.virtual_class import attend


class TeacherUser(Person):
    persona = "teacher"

    def session(self, deadline: float) -> None:
        dashboard = self.platform.dashboard()
        if not dashboard.class_ids:
            return
        class_id = dashboard.class_ids[self.surge.rng.randrange(len(dashboard.class_ids))]
        # Each teacher runs their own lesson, even when a colleague already has one open for the class.
        virtual_class = self.platform.create_virtual_class(class_id, "Cours du matin")
        self.platform.homework()
        attend(self, virtual_class, deadline)
