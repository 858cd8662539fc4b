"""The attack incident: bots flood the login with wrong credentials at the scenario's rate, open loop.

Each process sends its share (1/parts) of the scaled rate as a Poisson stream, each attempt on a connection of
its own, whatever the platform answers; attempts are counted apart from people (ledger and request names).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import gevent
import numpy as np
from gevent.pool import Pool

from schoolsurge.clients.base import ClientContext, StepFailed
from schoolsurge.models.incidents import bot_rate_at
from schoolsurge.rundir import BOT_STEP_PREFIX, Counter

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

TICK_S = 0.1
MAX_BOTS_IN_FLIGHT = 500  # per process: beyond it attempts are counted as not sent, never queued
BOT_PASSWORD = "not-the-password"


def run_bot_floods(engine: Engine) -> None:
    """Runs for the whole test in every process that runs agents; idle when no flood is on."""
    context = engine.context
    if not context.scenario.bot_floods:
        return
    rng = np.random.default_rng([context.seed, 0xB07])
    in_flight = Pool(MAX_BOTS_IN_FLIGHT)
    replay = context.replay
    sent = 0
    while True:
        gevent.sleep(TICK_S)
        share = engine.share
        if not share.queue.loaded:
            continue
        run_s = share.queue.run_seconds()
        rate = bot_rate_at(context.scenario, replay.clock_at(run_s)) * replay.load_fraction / share.parts
        for _ in range(int(rng.poisson(rate * TICK_S))):
            if in_flight.full():
                share.ledger.count(run_s, Counter.BOT_ATTEMPTS_NOT_SENT)
                continue
            sent += 1
            share.ledger.count(run_s, Counter.BOT_LOGIN_ATTEMPTS)
            in_flight.spawn(_attempt, engine, f"bot.{share.part_index}.{sent:08d}")


def _attempt(engine: Engine, user: str) -> None:
    connection = engine.http.new_connection(engine.environment)
    client = engine.context.client_class(
        ClientContext(http=connection, settings=engine.context.client_settings, step_prefix=BOT_STEP_PREFIX)
    )
    with contextlib.suppress(StepFailed):
        client.login(user, BOT_PASSWORD)
