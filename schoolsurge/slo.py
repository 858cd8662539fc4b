"""Service-level objectives judged on a run's statistics. Pure: takes numbers, returns verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from schoolsurge.scenario import Slo


@dataclass(frozen=True)
class RunTotals:
    requests: int
    failures: int
    logins: int
    login_p95_ms: float | None

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Verdict:
    objective: str
    threshold: str
    measured: str
    met: bool


def judge(totals: RunTotals, slo: Slo) -> list[Verdict]:
    """One verdict per objective. A run that measured no login cannot meet the login objective."""
    login_met = totals.login_p95_ms is not None and totals.login_p95_ms <= slo.login_p95_ms
    measured_p95 = f"{totals.login_p95_ms:.0f} ms" if totals.login_p95_ms is not None else "no login measured"
    return [
        Verdict("login p95 (whole SSO flow)", f"<= {slo.login_p95_ms:.0f} ms", measured_p95, login_met),
        Verdict(
            "error ratio",
            f"<= {slo.error_ratio:.2%}",
            f"{totals.error_ratio:.2%} of {totals.requests} requests",
            totals.requests > 0 and totals.error_ratio <= slo.error_ratio,
        ),
    ]
