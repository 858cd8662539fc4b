"""capacity.csv: a capacity sweep's steps, one row per load step (the engine writes it, engine/kinds/sweep.py; the
report's capacity card reads it, report/load/capacity_steps.py)."""

from __future__ import annotations

from enum import StrEnum

from schoolsurge.rundir.sessions import FAILURE_COUNTERS, TIME_TO_LOGIN_PERCENTILES


class StepStatus(StrEnum):
    MEASURED = "measured"  # held and measured on its settled part
    STOPPED = "stopped"  # measured, and breached the SLOs by the stop margin: the planned steps ended after it
    INCOMPLETE = "incomplete"  # the run stopped (Ctrl-C...) before its settled part was measured whole
    SKIPPED = "skipped"  # never run: the sweep stopped before it


class StepPhase(StrEnum):
    PLANNED = "planned"  # a step of the sweep's plan, its level fixed before the run
    REFINEMENT = "refinement"  # a bisection step near the break, its level chosen from the steps judged before it


MEASURED_STATUSES = (StepStatus.MEASURED.value, StepStatus.STOPPED.value)  # steps measured whole


# Rates are in run terms (this run's people and clock); divide by the load fraction (scale x speed,
# capacity.json) for national terms. Latencies are real milliseconds.
CAPACITY_COLUMNS = (
    "step",
    "status",
    "phase",  # StepPhase: planned, or a refinement step (bisecting the range near the break)
    "offered_arrivals_per_s",
    "national_arrivals_per_s",  # the same offered rate in national terms
    "start_s",  # run seconds: the step began, its measured (settled) part began, it ended
    "measured_from_s",
    "end_s",
    "arrivals",  # people who started in the measured part
    "logins_per_s",  # logins achieved
    "requests_per_s",  # people's HTTP requests, failed or not
    "successful_requests_per_s",
    *(f"{counter.value}_per_s" for counter in FAILURE_COUNTERS),
    "concurrency",  # mean people in a session (N)
    "in_virtual_class",
    *(f"time_to_login_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
    *(f"request_latency_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
    "error_ratio",
    "late",
    "dropped",
    "gave_up",  # people who gave up logging in or left when pages kept failing
    "generator_cpu_percent",
    "slo_met",  # every objective of the scenario held in the step (true/false)
    "breaches",  # the objectives breached, "; "-separated
)
