"""A secondary pupil: joins their class's virtual class (waiting room, patience), else reads and browses."""

from __future__ import annotations

import time

from schoolsurge.clients.base import Dashboard
from schoolsurge.models.behaviour import has_trait
from schoolsurge.personas.base import Behaviour, Steps
from schoolsurge.personas.virtual_class import heartbeat_interval, stay_in_class, wait_until_admitted
from schoolsurge.rundir import Counter


class StudentBehaviour(Behaviour):
    persona = "student"

    def session(self) -> Steps[None]:
        dashboard = yield from self.dashboard()
        if self.comes_for_virtual_class() and (yield from self.attend_virtual_class(dashboard)):
            return
        yield from self.browse_until_deadline()

    def comes_for_virtual_class(self) -> bool:
        """The group's `virtual_class` share of its pupils comes for their class's virtual class."""
        return has_trait(self.person, self.group.virtual_class)

    def attend_virtual_class(self, dashboard: Dashboard) -> Steps[bool]:
        """Join the class's virtual class once the teacher has created it; False if the pupil gives up.

        A pupil who came for the lesson waits for it as long as their patience lasts, looking again at the
        dashboard between two thoughts; their time in class (their session length) counts from when the
        teacher lets them in."""
        gives_up_at = time.time() + self.group.retry.patience_seconds / self.speed
        self.deadline = max(self.deadline, gives_up_at)
        virtual_class = _class_of(dashboard)
        while virtual_class is None:
            if not (yield from self.think()) or time.time() >= gives_up_at:
                return False
            virtual_class = _class_of((yield from self.dashboard()))
        status = yield from self.step(self.platform.join_virtual_class, virtual_class)
        if status is None or status == "closed":  # the lesson ended as they came: they read and browse instead
            return False
        if not (yield from wait_until_admitted(self, virtual_class, status)):
            yield from self.step(self.platform.leave_virtual_class, virtual_class)
            return False
        self.share.ledger.count(self.cohort_second, Counter.VIRTUAL_CLASS_JOINS)
        self.deadline = self.session_ends_at(time.time())
        yield from stay_in_class(self, virtual_class)
        if self.session_left() > heartbeat_interval(self):
            yield from self.browse_until_deadline()
        yield from self.step(self.platform.leave_virtual_class, virtual_class)
        return True


def _class_of(dashboard: Dashboard) -> int | None:
    """The virtual class open (or in its waiting room) for one of the pupil's classes, if any."""
    for class_id in dashboard.class_ids:
        for by_class in (dashboard.open_virtual_classes, dashboard.waiting_virtual_classes):
            if class_id in by_class:
                return by_class[class_id]
    return None
