"""The exit statuses of `schoolsurge` (and of a plain `locust -f` run the loopback guard stopped or whose client is
broken): one home, read by the command line, the option table's help and the conclusion of a run (README.md, "Exit
status")."""

EXIT_ERROR = 1  # the run could not proceed (the platform did not start, Locust failed)
EXIT_USAGE = 2  # bad input refused before anything started, or a run the loopback guard stopped
EXIT_SLO_BREACHED = 3  # an SLO breached (run --fail-on-slo), or a figure regressed (compare --fail-on-regression)
EXIT_INVALID_RUN = 4  # the load generator or the platform's machine, not the platform, bound (generator-/machine-bound)
EXIT_CLIENT_BROKEN = 5  # invalid run: the client crashed in more than 10% of the journeys (report/outcome/health.py)
EXIT_INTERRUPTED = 130  # Ctrl-C, SIGTERM, SIGHUP: what was measured is kept and reported
