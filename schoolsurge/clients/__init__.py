"""Platform clients: which HTTP calls carry out each step a persona takes.

Personas only speak to `PlatformClient` (the contract, in base.py); `CasClient` logs in through any CAS 3.0
server, `OidcClient` through any OpenID Provider; `ReferencePlatformClient` and `ReferenceOidcClient` add the
embedded platform's pages to each. To aim the same people at another
platform, write one subclass and pass it with `--client package.module:Class`.
"""

from schoolsurge.clients.base import (
    ClientContext,
    ClientSettings,
    Dashboard,
    Homework,
    Person,
    PlatformClient,
    StepFailed,
    StepNotSupported,
)
from schoolsurge.clients.cas import CasClient
from schoolsurge.clients.oidc import OidcClient
from schoolsurge.clients.reference import ReferenceOidcClient, ReferencePlatformClient

__all__ = [
    "CasClient",
    "ClientContext",
    "ClientSettings",
    "Dashboard",
    "Homework",
    "OidcClient",
    "Person",
    "PlatformClient",
    "ReferenceOidcClient",
    "ReferencePlatformClient",
    "StepFailed",
    "StepNotSupported",
]
