"""Service-level objectives judged on a run's figures within the SLO window (RunTotals, load/run_data.py): numbers
in, verdicts out."""

from __future__ import annotations

import math
from dataclasses import dataclass

from schoolsurge.report.load.run_data import LOGIN_PERCENTILES, RunData, RunTotals
from schoolsurge.scenario import Slo


@dataclass(frozen=True)
class Verdict:
    objective: str
    threshold: str
    measured: str
    met: bool

    def line(self) -> str:
        """As printed at the end of a run: `login p95 (08:00-10:00): 67 ms (...) (objective <= 2000 ms) -> met`."""
        return f"{self.objective}: {self.measured} (objective {self.threshold}) -> {'met' if self.met else 'BREACHED'}"


def _threshold(slo: Slo, percentile: int) -> float | None:
    return {50: slo.login_p50_ms, 95: slo.login_p95_ms, 99: slo.login_p99_ms}[percentile]


def judge(totals: RunTotals, slo: Slo) -> list[Verdict]:
    """One verdict per objective set. No login measured in the window cannot meet a login objective; a
    percentile with too few people for it (rundir/figures.py `min_people`) is not judged, and says so."""
    verdicts = []
    for percentile in LOGIN_PERCENTILES:
        threshold = _threshold(slo, percentile)
        if threshold is None:
            continue
        figure = totals.login.get(percentile)
        if figure is not None:
            met = figure.meets(threshold)
            if met is None and figure.tried:  # too few people for it: not judged, not breached
                continue
            measured = (
                figure.text()
                if not figure.judged or math.isinf(figure.value_ms or 0)
                else (f"{figure.text()} over the {figure.tried:,} people who tried ({figure.never:,} never logged in)")
            )
            verdicts.append(
                Verdict(f"login p{percentile} ({totals.window})", f"<= {threshold:.0f} ms", measured, bool(met))
            )
            continue
        measured_ms = totals.login_ms.get(percentile)
        verdicts.append(
            Verdict(
                f"login p{percentile} ({totals.window})",
                f"<= {threshold:.0f} ms",
                "no login measured" if measured_ms is None else f"{measured_ms:.0f} ms ({totals.login_measure})",
                measured_ms is not None and measured_ms <= threshold,
            )
        )
    verdicts.append(
        Verdict(
            f"error ratio ({totals.window})",
            f"<= {slo.error_ratio:.2%}",
            f"{totals.error_ratio:.2%} of {totals.requests} requests",
            totals.requests > 0 and totals.error_ratio <= slo.error_ratio,
        )
    )
    return verdicts


def judge_run(data: RunData) -> list[Verdict]:
    """The verdicts of a loaded run, none when its scenario is unknown."""
    return judge(data.totals(), data.scenario.slo) if data.scenario is not None else []
