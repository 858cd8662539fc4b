"""Virtual classes over the morning: who holds one, who gets into one, and when, as the personas live it.

A teacher group's `virtual_class` share of its people each hold one class (they create it on arrival, open it
after a moment, and stay for their session: the class ends when they leave). A pupil group's share wants to
join their class's: a pupil who arrives while the teacher is there goes in at once; one who arrives before
waits (looking at the dashboard) for as long as their patience lasts, and goes in when the teacher arrives,
or gives up; one who arrives after the teacher has left finds no class. So, with S a pupil's arrival, T their
teacher's, E the teacher's departure and P the pupil's patience:

    joins         = wanting pupils x P(T <= S + P and E > S)
    admitted at t : f_S(t) H(t) (the teacher is there: H = P(T <= t < E)) + f_T(t) (F_S(t) - F_S(t - P)) (waited)

and people in a class = teachers holding one, convolved with their session lengths, plus pupils admitted,
each staying their session length from admission or until their teacher leaves (the lesson ends), whichever
comes first (computed minute by minute: class_pupils). Pure numpy, national units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schoolsurge.models.curves import session_survival
from schoolsurge.scenario import Group, Scenario

HEARTBEAT_SECONDS = 30.0  # scenario seconds between two keep-alives of a person in a virtual class


@dataclass(frozen=True)
class VirtualClassCurves:
    """National expectations, one value per second of the window."""

    opened: np.ndarray  # virtual classes created in second i
    admitted: dict[str, np.ndarray]  # pupil group -> pupils let into a class in second i
    in_class: dict[str, np.ndarray]  # group -> people inside a virtual class at the end of second i
    join_probability: dict[str, float]  # pupil group -> share of its wanting pupils who get in

    @property
    def total_opened(self) -> float:
        return float(self.opened.sum())

    @property
    def total_joined(self) -> float:
        return float(sum(curve.sum() for curve in self.admitted.values()))

    def total_in_class(self) -> np.ndarray:
        return np.sum(list(self.in_class.values()), axis=0) if self.in_class else np.zeros_like(self.opened)


def convolve_survival(starts: np.ndarray, group: Group) -> np.ndarray:
    """People still there at the end of each second, from the starts per second and the group's session
    lengths (a start in second j is taken at its middle)."""
    kernel = session_survival(group.session, np.arange(len(starts)) + 0.5)
    size = 2 * len(starts)
    full = np.fft.irfft(np.fft.rfft(starts, size) * np.fft.rfft(kernel, size), size)  # FFT: 10^4-10^5 points
    return np.clip(full[: len(starts)], 0.0, None)


def virtual_class_curves(scenario: Scenario, arrivals: dict[str, np.ndarray]) -> VirtualClassCurves:
    """Classes opened, pupils admitted and people in a class, from each group's national arrivals per second."""
    seconds = len(next(iter(arrivals.values())))
    opened = np.zeros(seconds)
    teachers_in_class = np.zeros(seconds)
    in_class: dict[str, np.ndarray] = {}
    for group in scenario.groups:
        if group.persona == "teacher" and group.virtual_class:
            holding = arrivals[group.name] * group.virtual_class
            opened += holding
            in_class[group.name] = convolve_survival(holding, group)
            teachers_in_class += in_class[group.name]
    admitted: dict[str, np.ndarray] = {}
    probability: dict[str, float] = {}
    for group in scenario.groups:
        if group.persona != "student" or not group.virtual_class:
            continue
        wanting = arrivals[group.name] * group.virtual_class
        if opened.sum() <= 0:  # nobody opens a class: nobody gets in
            admitted[group.name], probability[group.name] = np.zeros(seconds), 0.0
            continue
        teacher_present = teachers_in_class / opened.sum()  # P(T <= t < E) for a pupil's own teacher
        came_to_a_class = wanting * teacher_present  # the teacher was there: in at once
        waited = admissions(wanting, opened / opened.sum(), np.zeros(seconds), group.retry.patience_seconds)
        admitted[group.name] = came_to_a_class + waited
        probability[group.name] = float(admitted[group.name].sum() / wanting.sum()) if wanting.sum() else 0.0
        in_class[group.name] = class_pupils(came_to_a_class, waited, opened, teacher_group(scenario), group)
    return VirtualClassCurves(opened, admitted, in_class, probability)


def admissions(
    wanting: np.ndarray, teacher_density: np.ndarray, teacher_present: np.ndarray, patience_s: float
) -> np.ndarray:
    """Pupils let in per second: those arriving while their teacher is there at once, those arriving before
    when the teacher arrives, if that is within their patience (see the module docstring)."""
    patience = max(1, int(round(patience_s)))
    arrived = np.cumsum(wanting)
    arrived_before_patience = np.concatenate([np.zeros(patience), arrived[:-patience]])[: len(arrived)]
    still_waiting = arrived - arrived_before_patience - wanting  # arrived in (t - P, t), teacher not there yet
    return wanting * teacher_present + teacher_density * still_waiting


def teacher_group(scenario: Scenario) -> Group:
    """The teacher group whose session lengths the lessons last (the first that holds virtual classes)."""
    return next(g for g in scenario.groups if g.persona == "teacher" and g.virtual_class)


def class_pupils(
    came_to_a_class: np.ndarray, waited: np.ndarray, opened: np.ndarray, teachers: Group, pupils: Group
) -> np.ndarray:
    """Pupils inside a class at the end of each second: admitted, not yet at the end of their own session, and
    their teacher still there. Minute by minute (the lesson's end couples every admission with every later
    minute: M^2 work for M minutes), back to seconds by interpolation.

    A pupil let in on arriving, at minute j, has a teacher who was there at j: it stays until t with
    sum_{a<=j} h(a) S_T(t-a) / sum_{a<=j} h(a) S_T(j-a) (h: classes opened per minute, S_T: teachers' session
    survival). A pupil let in when their teacher arrived, at j, keeps them S_T(t-j)."""
    seconds = len(opened)
    minutes = -(-seconds // 60)

    def per_minute(curve: np.ndarray) -> np.ndarray:
        return np.pad(curve, (0, minutes * 60 - seconds)).reshape(minutes, 60).sum(axis=1)

    lags = np.arange(minutes)[None, :] - np.arange(minutes)[:, None]  # [j, t] -> t - j (minutes)
    later = lags >= 0
    lag_s = np.where(later, lags, 0) * 60.0 + 30.0
    teacher_stays = np.where(later, session_survival(teachers.session, lag_s), 0.0)
    pupil_stays = np.where(later, session_survival(pupils.session, lag_s), 0.0)
    present_since = np.cumsum(per_minute(opened)[:, None] * teacher_stays, axis=0)  # [j, t]
    present_at_j = np.diag(present_since)
    still_there = np.divide(
        present_since, present_at_j[:, None], out=np.zeros_like(present_since), where=present_at_j[:, None] > 0
    )
    staying = per_minute(came_to_a_class)[:, None] * still_there + per_minute(waited)[:, None] * teacher_stays
    by_minute = (staying * pupil_stays).sum(axis=0)
    return np.interp(np.arange(seconds), np.arange(minutes) * 60 + 59, by_minute, left=0.0)
