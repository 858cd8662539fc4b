"""The platform's side of a run: the target's own Prometheus figures scraped during the run, as series on the
run's clock (series.py), the capacity they imply by the operational laws (laws.py), and their charts (charts.py).
"""
