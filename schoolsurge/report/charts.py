"""Charts of a run against the scenario's clock, as PNG bytes (embedded in the HTML report)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on load generators and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import FuncFormatter, MultipleLocator  # noqa: E402

from schoolsurge.report.data import RunData  # noqa: E402
from schoolsurge.rundir import AGGREGATED  # noqa: E402
from schoolsurge.scenario import seconds_to_clock  # noqa: E402


def _figure() -> tuple[plt.Figure, Axes]:
    figure, axes = plt.subplots(figsize=(9, 3.2), dpi=100)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _finish(figure: plt.Figure, axes: Axes, data: RunData, ylabel: str) -> bytes:
    if data.clock_start_s is not None:
        low, high = axes.get_xlim()
        # Ticks on round clock times: every 30 minutes over a morning, every 10 over an hour or less.
        axes.xaxis.set_major_locator(MultipleLocator(1800 if high - low > 3 * 3600 / 2 else 600))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: seconds_to_clock(x)))
        axes.set_xlabel("scenario clock (HH:MM)")
    else:
        axes.set_xlabel("run time (s)")
    axes.set_ylabel(ylabel)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def users_over_time(data: RunData) -> bytes:
    aggregated = data.history[data.history["Name"] == AGGREGATED]
    figure, axes = _figure()
    axes.plot(aggregated["clock_s"], aggregated["User Count"], color="tab:blue", label="simulated users")
    return _finish(figure, axes, data, "users")


def throughput_over_time(data: RunData) -> bytes:
    rows = data.history[data.is_request_row(data.history)]
    per_tick = rows.groupby("clock_s")[["Requests/s", "Failures/s"]].sum()
    figure, axes = _figure()
    axes.plot(per_tick.index, per_tick["Requests/s"], color="tab:green", label="requests/s")
    axes.plot(per_tick.index, per_tick["Failures/s"], color="tab:red", label="failures/s")
    return _finish(figure, axes, data, "per second (10 s window)")


def login_latency_over_time(data: RunData) -> bytes:
    login = data.history[data.is_login_row(data.history)]
    login = login[pd.notna(login["95%"]) & (login["95%"] > 0)]
    figure, axes = _figure()
    axes.plot(login["clock_s"], login["50%"], color="tab:blue", label="login p50")
    axes.plot(login["clock_s"], login["95%"], color="tab:orange", label="login p95")
    if data.scenario is not None:
        axes.axhline(data.scenario.slo.login_p95_ms, color="tab:red", linestyle="--", label="p95 objective")
    return _finish(figure, axes, data, "ms (whole SSO flow)")


def _per_minute(data: RunData, columns: list[str], how: str = "sum") -> pd.DataFrame:
    """Session metrics per scenario minute (or per run minute when the clock is unknown)."""
    sessions = data.sessions
    x = sessions["clock_s"] if "clock_s" in sessions else sessions["second"]
    minute = (x // 60) * 60
    return sessions.groupby(minute)[columns].agg(how)


def arrivals_per_minute(data: RunData) -> bytes:
    per_minute = _per_minute(data, ["scheduled", "started", "late", "dropped", "abandoned"])
    figure, axes = _figure()
    axes.step(per_minute.index, per_minute["scheduled"], where="post", color="tab:gray", label="scheduled")
    axes.step(per_minute.index, per_minute["started"], where="post", color="tab:blue", label="started")
    axes.step(per_minute.index, per_minute["late"], where="post", color="tab:orange", label="started late")
    axes.step(per_minute.index, per_minute["dropped"], where="post", color="tab:red", label="dropped")
    axes.step(per_minute.index, per_minute["abandoned"], where="post", color="tab:purple", label="gave up logging in")
    return _finish(figure, axes, data, "people per scenario minute")


def time_to_login_over_time(data: RunData) -> bytes:
    sessions = data.sessions
    x = sessions["clock_s"] if "clock_s" in sessions else sessions["second"]
    figure, axes = _figure()
    for percentile, colour in ((50, "tab:blue"), (95, "tab:orange"), (99, "tab:red")):
        column = pd.to_numeric(sessions[f"time_to_login_p{percentile}_ms"], errors="coerce")
        axes.plot(x, column.rolling(5, min_periods=1).max(), color=colour, label=f"p{percentile} (5 s max)")
    if data.scenario is not None:
        axes.axhline(data.scenario.slo.login_p95_ms, color="tab:orange", linestyle="--", label="p95 objective")
    axes.set_yscale("log")
    return _finish(figure, axes, data, "ms from intended arrival (log)")


def pool_and_sessions(data: RunData) -> bytes:
    sessions = data.sessions
    x = sessions["clock_s"] if "clock_s" in sessions else sessions["second"]
    figure, axes = _figure()
    axes.plot(x, sessions["pool_size"], color="tab:gray", label="agents in the pool")
    axes.plot(x, sessions["active_sessions"], color="tab:blue", label="people in a session")
    axes.plot(x, sessions["in_virtual_class"], color="tab:green", label="in a virtual class")
    axes.plot(x, sessions["waiting_for_agent"], color="tab:red", label="arrivals waiting for an agent")
    return _finish(figure, axes, data, "people / agents")


def _binned(data: RunData, columns: list[str]) -> pd.DataFrame:
    """Session metrics summed over bins of whole run seconds about 5 scenario minutes long, indexed by the
    scenario clock of each bin's start (never aliasing: a bin is always a whole number of run seconds)."""
    sessions = data.sessions
    speed = data.speed or 1.0
    width = max(1, round(300 / speed))
    start = data.clock_start_s if data.clock_start_s is not None else 0.0
    bins = (sessions["second"] // width) * width
    summed = sessions.groupby(bins)[columns].sum()
    summed.index = start + summed.index * speed
    return summed


def served_over_time(data: RunData) -> bytes:
    """Of the people due in each 5 minutes, the share who got in, and those who gave up."""
    binned = _binned(data, ["started", "logins_succeeded", "abandoned", "gave_up_page"])
    tried = binned["started"].where(binned["started"] > 0)
    figure, axes = _figure()
    axes.plot(binned.index, 100 * binned["logins_succeeded"] / tried, color="tab:green", label="got in (%)")
    axes.plot(binned.index, 100 * binned["abandoned"] / tried, color="tab:red", label="gave up logging in (%)")
    axes.plot(binned.index, 100 * binned["gave_up_page"] / tried, color="tab:purple", label="left, pages failing (%)")
    axes.set_ylim(-2, 102)
    return _finish(figure, axes, data, "% of the people due")


def retries_over_time(data: RunData) -> bytes:
    """The reconnection bubble: retries (logins and pages asked again) against all people's requests."""
    binned = _binned(data, ["login_retries", "page_retries"])
    requests = data.people_requests_per_second()
    figure, axes = _figure()
    width = max(1, round(300 / (data.speed or 1.0)))
    axes.plot(binned.index, binned["login_retries"] / width, color="tab:red", label="login retries / s")
    axes.plot(binned.index, binned["page_retries"] / width, color="tab:orange", label="page retries / s")
    if requests is not None and len(requests):
        per_bin = requests.groupby((requests.index // width) * width).sum() / width
        start = data.clock_start_s if data.clock_start_s is not None else 0.0
        axes.plot(start + per_bin.index * (data.speed or 1.0), per_bin, color="tab:blue", label="people's requests / s")
    return _finish(figure, axes, data, "per run second")
