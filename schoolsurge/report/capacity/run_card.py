"""A normal run's card (not a sweep): the highest load it held for a few scenario minutes in a row with every SLO
met, the lowest load at which an objective broke, and who got in within the objective, as the report's sentences
and table and its part of capacity.json. Built by capacity/run.py from the run's sessions and histograms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from schoolsurge.report.capacity.card import SUSTAINED_BINS, CapacityCard, RunLoad
from schoolsurge.report.capacity.wording import or_dash, people_text, rate_text
from schoolsurge.report.outcome.served import PUBLISHED_2021_REACHED, PUBLISHED_2021_SHARE, PUBLISHED_2021_TRIED
from schoolsurge.report.platform.laws import OperationalLaws, morning_laws
from schoolsurge.report.platform.series import PlatformSeries


@dataclass
class RunCard(CapacityCard):
    """A normal run's capacity answer, from its bins of about one scenario minute (`run`)."""

    kind = "run"

    def headline(self) -> list[str]:
        return _run_headline(self)

    def figures(self) -> list[tuple[str, str, str]]:
        run = self.run
        if run is None:
            return []
        rows = []
        for label, load in (
            (f"load held {run.sustained_bins} bins in a row, SLOs met", run.held),
            ("lowest load at which an SLO broke", run.broke),
            ("highest load of any bin", run.top),
        ):
            if load is None:
                rows.append((label, "none", "-"))
                continue
            stretch = f"{load.from_clock}-{load.to_clock}"
            rows.append(self.rate_row(f"{label}: people's requests/s ({stretch})", load.requests_per_s))
            rows.append(self.rate_row(f"{label}: logins/s ({stretch})", load.logins_per_s))
        if run.within_objective is not None:
            rows.append(
                (
                    f"logged in within {run.objective_ms:,.0f} ms ({run.window})",
                    f"{run.within_objective:,} of {run.tried:,}",
                    or_dash(self.national_people(run.within_objective), people_text),
                )
            )
        if run.served is not None:
            rows.append(
                (
                    f"got in, after retries ({run.served.window})",
                    f"{run.served.served:,} of {run.served.tried:,} ({run.served.share:.0%})",
                    f"{or_dash(self.national_people(run.served.served), people_text)} "
                    f"(2021: {PUBLISHED_2021_SHARE:.0%})",
                )
            )
        rows.append(("bin", f"{run.bin_run_s} run s", f"{run.bin_scenario_s / 60:g} scenario min"))
        if self.load_fraction is not None:
            rows.append(("load fraction (scale x speed)", f"{self.load_fraction:.4g}", "1"))
        return rows

    def answer(self) -> dict[str, Any]:
        if self.run is None:
            return {}
        run = self.run

        def load(value: RunLoad | None) -> dict[str, Any] | None:
            if value is None:
                return None
            return {
                "offered_per_s": value.offered_per_s,
                "offered_per_s_national": self.national_rate(value.offered_per_s),
                "requests_per_s": value.requests_per_s,
                "logins_per_s": value.logins_per_s,
                "requests_per_s_national": self.national_rate(value.requests_per_s),
                "logins_per_s_national": self.national_rate(value.logins_per_s),
                "from": value.from_clock,
                "to": value.to_clock,
                "breaches": list(value.breaches),
            }

        return {
            "run": {
                "bin_run_s": run.bin_run_s,
                "bin_scenario_s": run.bin_scenario_s,
                "bins": run.bins,
                "sustained_bins": SUSTAINED_BINS,
                "held": load(run.held),
                "broke": load(run.broke),
                "top": load(run.top),
                "window": run.window,
                "tried": run.tried,
                "tried_national": self.national_people(run.tried),
                "within_login_p95_objective": run.within_objective,
                "within_login_p95_objective_national": self.national_people(run.within_objective),
                "login_p95_objective_ms": run.objective_ms,
                "served": run.served.served if run.served else None,
                "served_share": run.served.share if run.served else None,
                "published_2021_share": PUBLISHED_2021_SHARE,
                "requests_source": run.requests_source,
            }
        }

    def operational_laws(
        self,
        series: PlatformSeries,
        sessions: Callable[[], pd.DataFrame | None],
        speed: float | None,
        clock_start_s: float | None,
    ) -> OperationalLaws | None:
        return morning_laws(series, sessions(), speed, clock_start_s)


# ---- its sentences -----------------------------------------------------------------------------------------


def _run_headline(card: RunCard) -> list[str]:
    run = card.run
    if run is None:
        return []
    minutes = f"{run.sustained_bins * run.bin_scenario_s / 60:g} scenario minutes"
    lines = []
    if run.held is not None:
        lines.append(
            f"This run held {_load(card, run.held)} for {minutes} in a row ({run.held.from_clock}-"
            f"{run.held.to_clock}) with every SLO met."
        )
    else:
        lines.append(f"The SLOs never held for {minutes} in a row in this run.")
    if run.broke is not None:
        lines.append(
            f"The lowest load at which they broke was {_load(card, run.broke)}, in the minute from "
            f"{run.broke.from_clock}: {'; '.join(run.broke.breaches)}."
        )
    elif run.top is not None:
        lines.append(
            f"They held throughout the run, up to {_load(card, run.top)}: this platform's capacity lies above "
            "that; a capacity sweep (`schoolsurge capacity`) measures it."
        )
    if run.within_objective is not None and run.tried:
        share = run.within_objective / run.tried
        lines.append(
            f"{share:.0%} of the people who tried to log in {run.window} did so within the login p95 objective "
            f"({run.objective_ms:,.0f} ms): {run.within_objective:,} of {run.tried:,} "
            f"{_people_terms(card, run.within_objective, run.tried)}."
        )
    served = run.served
    if served is not None and served.tried:
        lines.append(
            f"In all {served.share:.0%} of them got in, after retries: {served.served:,} of {served.tried:,} "
            f"{_people_terms(card, served.served, served.tried)}; on 6 April 2021, {PUBLISHED_2021_SHARE:.0%} did "
            f"({PUBLISHED_2021_REACHED:,} of about {PUBLISHED_2021_TRIED:,}, national terms)."
        )
    return lines


def _load(card: RunCard, load: RunLoad) -> str:
    """A load as the headline says it: offered first (what held and broke are judged on), then achieved."""
    offered = card.national_rate(load.offered_per_s)
    requests, logins = card.national_rate(load.requests_per_s), card.national_rate(load.logins_per_s)
    lead = f"{rate_text(load.offered_per_s)} login attempts per second offered (first tries and retries)"
    if card.run is not None and not card.run.requests_known:  # only logins were counted
        national = f"; {rate_text(offered)}/s and {rate_text(logins)} logins/s nationally" if offered else ""
        return f"{lead} ({rate_text(load.logins_per_s)} logins/s achieved, run terms{national})"
    run = f"{rate_text(load.requests_per_s)} people's requests/s and {rate_text(load.logins_per_s)} logins/s achieved"
    if requests is None or logins is None or offered is None:
        return f"{lead} ({run}, run terms)"
    return (
        f"{lead} ({run}, run terms; nationally {rate_text(offered)} arriving/s, {rate_text(requests)} requests/s "
        f"and {rate_text(logins)} logins/s)"
    )


def _people_terms(card: RunCard, part: int, whole: int) -> str:
    national_part, national_whole = card.national_people(part), card.national_people(whole)
    if national_part is None or national_whole is None:
        return "(run terms)"
    return f"(run terms; about {people_text(national_part)} of {people_text(national_whole)} nationally)"
