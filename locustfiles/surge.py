"""Replay a scenario's morning: `locust -f locustfiles/surge.py --scenario scenarios/smoke.yaml -H URL`."""

from schoolsurge.surge import *  # noqa: F403  (Locust discovers the user classes and the shape here)
