"""The run directory: the one written contract between what a run writes and what the report reads.

The engine, the platform and the Locust adapters only write these files; the report only reads them; neither
imports the other. Each file's format has one home here:

    reports/<UTC timestamp>-<scenario>/
      manifest.json            what ran and how it ended (manifest.py: Manifest, typed and versioned)
      run_spec.json            the run's resolved options, written once by whoever starts the run
      scenario.yaml            a copy of the scenario file
      timeline.json            the test's start (unix time) and the clock mapping
      locust_stats.csv, locust_stats_history.csv, locust_failures.csv, locust_exceptions.csv   Locust's own
                               (its entries' names: steps.py)
      sessions.csv             the engine's per-second metrics (sessions.py: Counter, Gauge)
      groups.csv               who got in per scenario group, by cohort second (groups.py: GROUP_COUNTERS)
      time_to_login.jsonl      raw time-to-login and request-latency histograms, one line per second
                               (histograms.py: encoding, merging, reading, the login percentile)
      client_steps.json        the client's skipped steps, its crashes and its failed logins by class, each with
                               its first example (client_steps.py: ClientSteps)
      target_metrics.prom      the target's /metrics at the end (shed reasons, CPU), when it serves them
      target_metrics.jsonl     the target's /metrics every few seconds during the run, one scrape a line
                               (metrics.py: the platform's metric names and shed reasons)
      capacity.csv             a capacity sweep's steps (capacity.py: CAPACITY_COLUMNS, StepStatus), sweeps only
      capacity.json            the capacity answer (fit, knee, SLO capacity, national terms), beside the report
      answer.json              the run's answer (held, who got in, capacity, instances, what binds): docs/capacity.md
      locust.log, platform.log logs (platform.log for the embedded platform)
      report.html              the report

File names and the helpers that create a directory and write JSON are in layout.py. Every file of it is written
through schoolsurge/files.py (a fresh temporary file renamed over the name: never through a link found there)
and read only when it is a regular file (a FIFO or a link is skipped with a note).
"""

from schoolsurge.rundir.capacity import CAPACITY_COLUMNS, MEASURED_STATUSES, StepPhase, StepStatus
from schoolsurge.rundir.client_steps import (
    DASHBOARD_STEP,
    LOGIN_STEP,
    LOGOUT_STEP,
    UNCLASSIFIED,
    ClientSteps,
    Occurrences,
    read_client_steps,
    write_client_steps,
)
from schoolsurge.rundir.figures import (
    LOGIN_MEASURE,
    LoginPercentile,
    OfferedRange,
    error_ratio,
    login_percentile,
    login_percentile_value,
    min_people,
    offered_range,
)
from schoolsurge.rundir.groups import GROUP_COUNTERS, GROUPS_COLUMNS
from schoolsurge.rundir.histograms import (
    HISTOGRAM_DIGITS,
    HISTOGRAM_FIELDS,
    HISTOGRAM_RANGE_MS,
    decode_histogram,
    encode_histogram,
    histogram_line,
    iter_histograms,
    merged,
    new_histogram,
    read_histograms,
)
from schoolsurge.rundir.layout import (
    ANSWER_JSON,
    CAPACITY_CSV,
    CAPACITY_JSON,
    CLIENT_STEPS,
    EXCEPTIONS_SUFFIX,
    FAILURES_CSV,
    FAILURES_SUFFIX,
    GROUPS_CSV,
    HISTOGRAMS,
    HISTORY_CSV,
    HISTORY_SUFFIX,
    LOCUST_CSV_SUFFIXES,
    LOCUST_LOG,
    LOCUST_PREFIX,
    MANIFEST,
    PLATFORM_LOG,
    REPORT,
    RUN_SPEC,
    SCENARIO_COPY,
    SESSIONS_CSV,
    STATS_CSV,
    STATS_SUFFIX,
    TARGET_METRICS,
    TARGET_METRICS_SERIES,
    TIMELINE,
    new_run_dir,
    write_json,
)
from schoolsurge.rundir.manifest import (
    SCHEMA_VERSION,
    VERSIONED_PACKAGES,
    LateWorker,
    LostWorker,
    Manifest,
    RunKind,
    RunStatus,
    SweepPlan,
    finish_manifest,
    package_versions,
    read_manifest,
    salvage_manifest,
    start_manifest,
    update_manifest,
)
from schoolsurge.rundir.metrics import MACHINE_REASONS, PROFILE_REASONS, SHED_REASONS, ShedLimit, ShedReason
from schoolsurge.rundir.sessions import (
    EVENT_COUNTERS,
    FAILURE_COUNTERS,
    SESSIONS_COLUMNS,
    TIME_TO_LOGIN_PERCENTILES,
    VIRTUAL_CLASS_REACHED,
    Counter,
    Gauge,
)
from schoolsurge.rundir.steps import AGGREGATED, BOT_STEP_PREFIX, CLIENT_CRASH_TYPE, LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE

__all__ = [
    "GROUPS_COLUMNS",
    "GROUPS_CSV",
    "GROUP_COUNTERS",
    "AGGREGATED",
    "BOT_STEP_PREFIX",
    "CAPACITY_COLUMNS",
    "CAPACITY_CSV",
    "ANSWER_JSON",
    "CAPACITY_JSON",
    "CLIENT_CRASH_TYPE",
    "CLIENT_STEPS",
    "DASHBOARD_STEP",
    "EVENT_COUNTERS",
    "EXCEPTIONS_SUFFIX",
    "FAILURES_CSV",
    "FAILURES_SUFFIX",
    "FAILURE_COUNTERS",
    "HISTOGRAMS",
    "HISTOGRAM_DIGITS",
    "HISTOGRAM_FIELDS",
    "HISTOGRAM_RANGE_MS",
    "HISTORY_CSV",
    "HISTORY_SUFFIX",
    "LOCUST_CSV_SUFFIXES",
    "LOCUST_LOG",
    "LOCUST_PREFIX",
    "LOGIN_FLOW_NAME",
    "LOGIN_FLOW_TYPE",
    "LOGIN_STEP",
    "LOGOUT_STEP",
    "MACHINE_REASONS",
    "MANIFEST",
    "MEASURED_STATUSES",
    "PLATFORM_LOG",
    "PROFILE_REASONS",
    "REPORT",
    "RUN_SPEC",
    "SCENARIO_COPY",
    "SCHEMA_VERSION",
    "SESSIONS_COLUMNS",
    "SESSIONS_CSV",
    "SHED_REASONS",
    "STATS_CSV",
    "STATS_SUFFIX",
    "TARGET_METRICS",
    "TARGET_METRICS_SERIES",
    "TIMELINE",
    "TIME_TO_LOGIN_PERCENTILES",
    "VIRTUAL_CLASS_REACHED",
    "UNCLASSIFIED",
    "VERSIONED_PACKAGES",
    "ClientSteps",
    "Counter",
    "Gauge",
    "LateWorker",
    "LostWorker",
    "Manifest",
    "Occurrences",
    "RunKind",
    "RunStatus",
    "ShedLimit",
    "ShedReason",
    "StepPhase",
    "StepStatus",
    "SweepPlan",
    "decode_histogram",
    "encode_histogram",
    "finish_manifest",
    "histogram_line",
    "iter_histograms",
    "login_percentile",
    "login_percentile_value",
    "LOGIN_MEASURE",
    "LoginPercentile",
    "OfferedRange",
    "error_ratio",
    "min_people",
    "offered_range",
    "merged",
    "new_histogram",
    "new_run_dir",
    "package_versions",
    "read_client_steps",
    "read_histograms",
    "read_manifest",
    "salvage_manifest",
    "start_manifest",
    "update_manifest",
    "write_client_steps",
    "write_json",
]
