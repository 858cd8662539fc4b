"""Personas: what a pupil, teacher or parent does during a session, and when.

They speak to a `PlatformClient`, never to HTTP directly.
"""

from schoolsurge.personas.parent import ParentUser
from schoolsurge.personas.student import StudentUser
from schoolsurge.personas.teacher import TeacherUser

__all__ = ["ParentUser", "StudentUser", "TeacherUser"]
