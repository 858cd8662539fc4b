"""Replay a scenario's morning as open arrivals:
`locust -f locustfiles/surge.py --scenario scenarios/smoke.yaml -H http://127.0.0.1:8080` (add --headless,
--processes N, or run a master and workers as usual)."""

from schoolsurge.locustfile import *  # noqa: F403  (Locust discovers the agent class and the shape here)
