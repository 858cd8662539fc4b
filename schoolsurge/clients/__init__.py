"""Platform clients: which HTTP calls carry out each step a persona takes.

Personas only speak to `PlatformClient`; to aim the same people at another platform, write one subclass.
"""

from schoolsurge.clients.base import Dashboard, Homework, PlatformClient, PlatformError

__all__ = ["Dashboard", "Homework", "PlatformClient", "PlatformError"]
