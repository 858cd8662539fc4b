"""The run report's charts, as inline SVG: every chart over time on the scenario clock (run seconds for a sweep,
or when the clock is unknown), the scenario's incidents shaded and its SLO window marked, in bins of whole run
seconds (report/series/axis.py).

- base.py: what every chart shares (a figure, its time axis, its SVG), and the run's Context;
- sections.py: which charts each section of the report draws;
- people.py: arrivals (rate and cumulative), who got in, concurrency against the plan;
- load.py: requests and failures by kind, retries, generator health;
- latency.py: latency percentiles over time, per step, the request latency distribution, the login CDF;
- locust.py: Locust's history alone, for a run without the engine's sessions.csv.
"""
