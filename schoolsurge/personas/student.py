"""A pupil: checks the dashboard, joins their class's virtual class when it is open, else reads."""

from __future__ import annotations

import time

from schoolsurge.personas.base import Person
from schoolsurge.personas.virtual_class import attend


class StudentUser(Person):
    persona = "student"

    def session(self, deadline: float) -> None:
        while True:
            dashboard = self.platform.dashboard()
            open_class = next(
                (dashboard.open_virtual_classes[c] for c in dashboard.class_ids if c in dashboard.open_virtual_classes),
                None,
            )
            if open_class is not None:
                self.platform.join_virtual_class(open_class)
                attend(self, open_class, deadline)
                self.platform.leave_virtual_class(open_class)
                return
            if not self.think(deadline):
                return
            reading = self.platform.homework if self.surge.rng.random() < 0.6 else self.platform.timetable
            reading()
            if not self.think(deadline) or time.monotonic() >= deadline:
                return
