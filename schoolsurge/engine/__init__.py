"""Open-arrival engine on top of Locust: people arrive when the clock says, not when an agent is free.

from schoolsurge.engine import install, engine_of
engine = install(environment, build_context(options))   # the locustfile's init event does this
engine_of(environment).ledger()                         # anywhere: agents, the load shape, tests
"""

from schoolsurge.engine.agent import SurgeAgent
from schoolsurge.engine.context import SurgeContext, build_context
from schoolsurge.engine.core import Engine, EngineNotInstalledError, engine_of, install
from schoolsurge.engine.shape import PoolShape

__all__ = [
    "Engine",
    "EngineNotInstalledError",
    "PoolShape",
    "SurgeAgent",
    "SurgeContext",
    "build_context",
    "engine_of",
    "install",
]
