"""Personas: what a pupil, teacher, parent or bot does during a session, and when.

They speak to a `PlatformClient`, never to HTTP directly; `behaviour_for` picks one for a scheduled arrival.
"""

from __future__ import annotations

from schoolsurge.clients.base import PlatformClient
from schoolsurge.context import SurgeContext
from schoolsurge.engine.queue import Claim
from schoolsurge.engine.runtime import Engine
from schoolsurge.personas.base import Behaviour, StepRecorder
from schoolsurge.personas.bot import BotBehaviour
from schoolsurge.personas.parent import ParentBehaviour
from schoolsurge.personas.student import StudentBehaviour
from schoolsurge.personas.teacher import TeacherBehaviour

BEHAVIOURS: dict[str, type[Behaviour]] = {
    b.persona: b for b in (StudentBehaviour, TeacherBehaviour, ParentBehaviour, BotBehaviour)
}


def behaviour_for(
    surge: SurgeContext, engine: Engine, platform: PlatformClient, claim: Claim, record_step: StepRecorder
) -> Behaviour:
    persona = surge.group(claim.arrival.group).persona
    return BEHAVIOURS[persona](surge, engine, platform, claim, record_step)


__all__ = ["BEHAVIOURS", "Behaviour", "behaviour_for"]
