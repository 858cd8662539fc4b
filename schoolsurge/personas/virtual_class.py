"""Being in a virtual class: wait in the waiting room (with patience), then a heartbeat at a steady interval."""

from __future__ import annotations

import time

from schoolsurge.personas.base import Behaviour, Steps

HEARTBEAT_SECONDS = 30  # scenario seconds between two keep-alives of the virtual-class client


def heartbeat_interval(person: Behaviour) -> float:
    return HEARTBEAT_SECONDS / person.speed


def stay_in_class(person: Behaviour, virtual_class_id: int) -> Steps[None]:
    """Heartbeats until the session ends; counted in the ledger's in_virtual_class gauge meanwhile. A client
    without heartbeats just stays."""
    share = person.share
    share.in_virtual_class += 1
    try:
        while person.session_left() > heartbeat_interval(person):
            yield heartbeat_interval(person)
            if (yield from person.step(person.platform.heartbeat, virtual_class_id)) == "closed":
                return  # the teacher ended the lesson
    finally:
        share.in_virtual_class -= 1


def wait_until_admitted(person: Behaviour, virtual_class_id: int, joined: str) -> Steps[bool]:
    """In the waiting room (heartbeats keep the place) until the teacher opens the class; False when patience
    runs out first."""
    gives_up_at = time.time() + person.group.retry.patience_seconds / person.speed
    admitted = joined == "joined"
    while not admitted:
        if time.time() >= min(gives_up_at, person.deadline):
            return False
        yield heartbeat_interval(person)
        status = yield from person.step(person.platform.heartbeat, virtual_class_id)
        if status is None or status == "closed":
            return False
        admitted = status == "open"
    return True
