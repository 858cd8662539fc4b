"""Who got in: of the people whose arrival fell in the SLO window and who tried to log in, the share who got in
(after retries); those still logging in when the run ended were not served. 6 April 2021's reference: 500,000
pupils and teachers reached "Ma classe à la maison" of about 1,352,000 who came for a virtual class
(docs/facts.md#the-event): 37%. Its population is measured apart: of the people of the whole replayed morning who
came for a virtual class (teachers to hold one, pupils to join one: sessions.csv `came_for_virtual_class`), those
who reached one (teachers who opened theirs, pupils let into one: rundir VIRTUAL_CLASS_REACHED). The whole morning,
not the SLO window: 2021's figure counts the day's people, 150,000 teachers among them (11%), and the teachers come
before their pupils, before the window (`make surge`: 15 of the 155 who came for a class over the morning are
teachers, none of them among the 08:00-10:00 arrivals).
"""

from __future__ import annotations

from dataclasses import dataclass

from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import GROUP_COUNTERS, VIRTUAL_CLASS_REACHED, Counter

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
    # Of the people of the whole replayed morning (virtual_class_window), the teachers and pupils who came for a
    # virtual class (2021's population) and, of them, those who reached one; None when the run did not record who
    # came (an earlier version).
    came_for_virtual_class: int | None = None
    reached_virtual_class: int | None = None
    virtual_class_window: str = "whole run"

    @property
    def share(self) -> float:
        return self.served / self.tried if self.tried else 0.0

    @property
    def virtual_class_share(self) -> float | None:
        """Of the people who came for a virtual class, the share who reached one (2021's 37%); None when the run
        did not record who came, or nobody did."""
        if not self.came_for_virtual_class or self.reached_virtual_class is None:
            return None
        return self.reached_virtual_class / self.came_for_virtual_class

    def line(self) -> str:
        national = ""
        if self.scale:
            national = f" (nationally about {self.served / self.scale:,.0f} of {self.tried / self.scale:,.0f})"
        waiting = f", {self.unfinished} were still logging in when the run ended" if self.unfinished else ""
        return (
            f"served {self.share:.0%}: {self.served} of the {self.tried} people of this run who tried to log in "
            f"{self.window}{national}; {self.gave_up} gave up{waiting}. {self.virtual_class_line()}"
        )

    def virtual_class_line(self) -> str:
        """2021's population in this run: who came for a virtual class and reached one, beside 2021's 37%."""
        reference = (
            f"6 April 2021: {PUBLISHED_2021_SHARE:.0%} of about {PUBLISHED_2021_TRIED:,} ({PUBLISHED_2021_REACHED:,} "
            "reached one)"
        )
        share = self.virtual_class_share
        if share is None:
            why = (
                "not recorded by this run"
                if self.came_for_virtual_class is None
                else f"none {self.virtual_class_window}"
            )
            return f"Teachers and pupils who came for a virtual class: {why}; {reference}"
        return (
            f"{share:.0%} of the {self.came_for_virtual_class:,} teachers and pupils who came for a virtual class "
            f"{self.virtual_class_window} reached one ({self.reached_virtual_class:,}); {reference}"
        )


def served_share(data: RunData) -> ServedShare | None:
    """The served share of the people due in the SLO window, when the run has the engine's sessions; 2021's
    population over the whole replayed morning (the module's docstring says why)."""
    if data.sessions is None:
        return None
    sessions = data.sessions
    seconds = data.slo_seconds() or (0.0, float("inf"))
    cohort = sessions[(sessions["second"] >= seconds[0]) & (sessions["second"] < seconds[1])]
    recorded = Counter.CAME_FOR_VIRTUAL_CLASS not in data.sessions_unrecorded
    return ServedShare(
        window=data.slo_window_label(),
        tried=int(cohort[Counter.STARTED].sum()),
        served=int(cohort[Counter.LOGINS_SUCCEEDED].sum()),
        gave_up=int(cohort[Counter.ABANDONED].sum()),
        scale=data.scale,
        unfinished=int(cohort[Counter.UNFINISHED].sum()),
        came_for_virtual_class=int(sessions[Counter.CAME_FOR_VIRTUAL_CLASS].sum()) if recorded else None,
        reached_virtual_class=int(sessions[list(VIRTUAL_CLASS_REACHED)].sum().sum()) if recorded else None,
        virtual_class_window=data.window_label(),
    )


@dataclass(frozen=True)
class GroupServed:
    """Of one scenario group's people due in the SLO window who tried to log in, who got in (groups.csv)."""

    group: str
    tried: int
    served: int
    gave_up: int
    unfinished: int

    @property
    def share(self) -> float:
        return self.served / self.tried if self.tried else 0.0


def served_by_group(data: RunData) -> list[GroupServed] | None:
    """The served share of each group's people due in the SLO window, in the scenario's order of its groups; None
    when the run did not record its people per group (groups.csv, from this version on)."""
    if data.groups is None:
        return None
    groups = data.groups
    start, end = data.slo_seconds() or (0.0, float("inf"))
    due = groups[(groups["second"] >= start) & (groups["second"] < end)]
    totals = due.groupby("group")[[c.value for c in GROUP_COUNTERS]].sum()
    order = [group.name for group in data.scenario.groups] if data.scenario is not None else []
    names = [name for name in order if name in totals.index] + sorted(set(totals.index) - set(order))
    return [
        GroupServed(
            name,
            int(totals.at[name, Counter.STARTED]),
            int(totals.at[name, Counter.LOGINS_SUCCEEDED]),
            int(totals.at[name, Counter.ABANDONED]),
            int(totals.at[name, Counter.UNFINISHED]),
        )
        for name in names
        if totals.at[name, Counter.STARTED] > 0
    ]
