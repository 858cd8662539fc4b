"""Personas: what a pupil, teacher or parent does during a session, and when.

They speak to a `PlatformClient`, never to HTTP directly; `behaviour_for` picks one for a scheduled arrival.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schoolsurge.clients.base import PlatformClient
from schoolsurge.personas.base import Behaviour, StepRecorder
from schoolsurge.personas.parent import ParentBehaviour
from schoolsurge.personas.student import StudentBehaviour
from schoolsurge.personas.teacher import TeacherBehaviour

if TYPE_CHECKING:  # the engine imports the personas: annotations only, so either can be imported first
    from schoolsurge.engine.context import SurgeContext
    from schoolsurge.engine.queue import Claim
    from schoolsurge.engine.share import ProcessShare

BEHAVIOURS: dict[str, type[Behaviour]] = {b.persona: b for b in (StudentBehaviour, TeacherBehaviour, ParentBehaviour)}


def behaviour_for(
    context: SurgeContext, share: ProcessShare, platform: PlatformClient, claim: Claim, record_step: StepRecorder
) -> Behaviour:
    persona = context.group(claim.arrival.group).persona
    return BEHAVIOURS[persona](context, share, platform, claim, record_step)


__all__ = ["BEHAVIOURS", "Behaviour", "behaviour_for"]
