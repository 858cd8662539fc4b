"""The attack incident: bots flood the login with wrong credentials at the scenario's rate, open loop.

Each process sends its share (1/parts) of the scaled rate as a Poisson stream, each attempt on a connection of
its own, whatever the platform answers; attempts are counted apart from people (ledger and request names).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import gevent
import numpy as np
from gevent.pool import Pool
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from schoolsurge.clients.base import PlatformClient, PlatformError
from schoolsurge.context import SurgeContext
from schoolsurge.engine.runtime import Engine
from schoolsurge.models.incidents import bot_rate_at

TICK_S = 0.1
MAX_BOTS_IN_FLIGHT = 500  # per process: beyond it attempts are counted as not sent, never queued
BOT_PASSWORD = "not-the-password"
BOT_STEP_PREFIX = "bot "


def run_bot_floods(
    environment: Environment,
    surge: SurgeContext,
    engine_now: Callable[[], Engine],
    client_factory: Callable[[FastHttpSession], PlatformClient],
) -> None:
    """Runs for the whole test in every process that runs agents; idle when no flood is on."""
    rng = np.random.default_rng([surge.seed, 0xB07])
    in_flight = Pool(MAX_BOTS_IN_FLIGHT)
    replay = surge.replay
    if not surge.scenario.bot_floods:
        return
    sent = 0
    while True:
        gevent.sleep(TICK_S)
        engine = engine_now()
        if not engine.queue.loaded:
            continue
        run_s = engine.queue.run_seconds()
        rate = bot_rate_at(surge.scenario, replay.clock_at(run_s)) * replay.load_fraction / engine.parts
        for _ in range(int(rng.poisson(rate * TICK_S))):
            if in_flight.full():
                engine.ledger.count(run_s, "bot_attempts_not_sent")
                continue
            sent += 1
            engine.ledger.count(run_s, "bot_login_attempts")
            in_flight.spawn(_attempt, environment, client_factory, f"bot.{engine.part_index}.{sent:08d}")


def _attempt(environment: Environment, client_factory: Callable[[FastHttpSession], PlatformClient], user: str) -> None:
    session = FastHttpSession(environment.host, environment.events.request, user=None)
    with contextlib.suppress(PlatformError):
        client_factory(session).login(user, BOT_PASSWORD)
