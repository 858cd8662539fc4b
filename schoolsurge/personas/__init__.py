"""Personas: what a pupil, teacher or parent does during a session, and when.

They speak to a `PlatformClient`, never to HTTP directly; `behaviour_for` picks one for a scheduled arrival. Of
the engine that runs them they know only the narrow interface of interface.py.
"""

from __future__ import annotations

from schoolsurge.clients.base import PlatformClient
from schoolsurge.personas.base import Behaviour
from schoolsurge.personas.interface import PersonClaim, RunContext, SessionShare, StepRecorder
from schoolsurge.personas.parent import ParentBehaviour
from schoolsurge.personas.student import StudentBehaviour
from schoolsurge.personas.teacher import TeacherBehaviour

BEHAVIOURS: dict[str, type[Behaviour]] = {b.persona: b for b in (StudentBehaviour, TeacherBehaviour, ParentBehaviour)}


def behaviour_for(
    context: RunContext, share: SessionShare, platform: PlatformClient, claim: PersonClaim, record_step: StepRecorder
) -> Behaviour:
    persona = context.group(claim.arrival.group).persona
    return BEHAVIOURS[persona](context, share, platform, claim, record_step)


__all__ = ["BEHAVIOURS", "Behaviour", "behaviour_for"]
