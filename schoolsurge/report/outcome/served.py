"""Who got in: of the people whose arrival fell in the SLO window and who tried to log in, the share who got in
(after retries); those still logging in when the run ended were not served. 6 April 2021's reference: 500,000
pupils and teachers reached "Ma classe à la maison" of about 1,352,000 who tried (docs/facts.md#the-event): 37%.
"""

from __future__ import annotations

from dataclasses import dataclass

from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import Counter

PUBLISHED_2021_REACHED = 500_000
PUBLISHED_2021_TRIED = 1_352_000
PUBLISHED_2021_SHARE = PUBLISHED_2021_REACHED / PUBLISHED_2021_TRIED


@dataclass(frozen=True)
class ServedShare:
    window: str
    tried: int  # people of the run whose arrival fell in the window and who tried to log in
    served: int  # of those, people who got in
    gave_up: int  # of those, people who gave up logging in
    scale: float | None
    unfinished: int = 0  # of those, people still logging in when the run ended

    @property
    def share(self) -> float:
        return self.served / self.tried if self.tried else 0.0

    def line(self) -> str:
        national = ""
        if self.scale:
            national = f" (nationally about {self.served / self.scale:,.0f} of {self.tried / self.scale:,.0f})"
        waiting = f", {self.unfinished} were still logging in when the run ended" if self.unfinished else ""
        return (
            f"served {self.share:.0%}: {self.served} of the {self.tried} people of this run who tried to log in "
            f"{self.window}{national}; {self.gave_up} gave up{waiting}. 6 April 2021: {PUBLISHED_2021_SHARE:.0%} "
            f"({PUBLISHED_2021_REACHED:,} of about {PUBLISHED_2021_TRIED:,})"
        )


def served_share(data: RunData) -> ServedShare | None:
    """The served share of the people due in the SLO window, when the run has the engine's sessions."""
    if data.sessions is None:
        return None
    sessions = data.sessions
    seconds = data.slo_seconds() or (0.0, float("inf"))
    cohort = sessions[(sessions["second"] >= seconds[0]) & (sessions["second"] < seconds[1])]
    return ServedShare(
        window=data.slo_window_label(),
        tried=int(cohort[Counter.STARTED].sum()),
        served=int(cohort[Counter.LOGINS_SUCCEEDED].sum()),
        gave_up=int(cohort[Counter.ABANDONED].sum()),
        scale=data.scale,
        unfinished=int(cohort[Counter.UNFINISHED].sum()),
    )
