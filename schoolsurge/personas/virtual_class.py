"""Being inside a virtual class: a heartbeat at a steady interval until the session ends."""

from __future__ import annotations

import time

import gevent

from schoolsurge.personas.base import Person

HEARTBEAT_SECONDS = 60  # scenario seconds between two keep-alives of a virtual-class client


def attend(person: Person, virtual_class_id: int, deadline: float) -> None:
    interval = person.surge.replay.scenario_seconds(HEARTBEAT_SECONDS)
    while time.monotonic() + interval < deadline:
        gevent.sleep(interval)
        person.platform.heartbeat(virtual_class_id)
