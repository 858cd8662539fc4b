"""A bot of the attack incident: hammers the login with wrong credentials; counted apart from people."""

from __future__ import annotations

import contextlib
import time

import gevent

from schoolsurge.clients.base import PlatformError
from schoolsurge.models.behaviour import next_retry_delay
from schoolsurge.personas.base import Behaviour

BOT_PASSWORD = "not-the-password"


class BotBehaviour(Behaviour):
    persona = "bot"

    def live(self) -> None:
        username = f"bot.{self.group.name}.{self.person:07d}"
        first_attempt, retries = time.time(), 0
        while True:
            self.engine.ledger.count(self.cohort_second, "bot_login_attempts")
            with contextlib.suppress(PlatformError):
                self.platform.login(username, BOT_PASSWORD)
            waited = (time.time() - first_attempt) * self.speed
            delay = next_retry_delay(self.group.retry, retries, waited, self.rng)
            if delay is None:
                return
            retries += 1
            gevent.sleep(delay / self.speed)
