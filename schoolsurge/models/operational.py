"""Operational laws (Denning and Buzen, 1978): capacity from what was measured, with no model of the queues.

For one resource measured over a window of T seconds, busy B seconds (summed over its m servers: CPU seconds
over m cores), while C requests completed:

    throughput          X = C / T
    utilisation         U = B / (m T)           per server, 0..1 (the whole machine's busy fraction)
    service demand      D = B / C = m U / X     resource seconds one request costs, all servers together
    utilisation law     U = X D / m
    bottleneck bound    X <= m / D              no more than m servers' worth of D-second requests a second

With several resources the one with the largest D / m (the bottleneck) bounds the system: X <= min_k m_k / D_k.
With N requests in the system and a think time Z, the asymptotic bound is X(N) <= min(N / (D_total + Z),
min_k m_k / D_k), and Little's law ties them together: N = X (R + Z).

D measured at a light load also carries what the resource spends whatever the load (a background task, an idle
loop): then D falls as the load grows. `marginal_demand` fits B/T = idle + D X over several windows: its slope is
the demand of one more request, and the bound becomes X <= (m - idle) / D.

Pure: numbers in, numbers out (tests/test_operational.py checks them by hand).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Demand:
    """One resource over one window: busy seconds (all servers), elapsed seconds, completions, servers."""

    busy_s: float
    elapsed_s: float
    completions: float
    servers: int = 1

    def __post_init__(self) -> None:
        if not self.elapsed_s > 0:
            raise ValueError(f"a window lasts more than 0 s, got {self.elapsed_s}")
        if self.busy_s < 0 or self.completions < 0:
            raise ValueError("busy time and completions are 0 or more")
        if self.servers < 1:
            raise ValueError(f"a resource has at least one server, got {self.servers}")

    @property
    def throughput(self) -> float:
        """X = C / T, completions per second."""
        return self.completions / self.elapsed_s

    @property
    def busy_servers(self) -> float:
        """B / T: servers busy on average (for a CPU, cores busy)."""
        return self.busy_s / self.elapsed_s

    @property
    def utilisation(self) -> float:
        """U = B / (m T), per server: the share of the resource's whole capacity in use."""
        return self.busy_s / (self.servers * self.elapsed_s)

    @property
    def demand_s(self) -> float | None:
        """D = B / C, seconds of the resource (all servers together) one completion costs; None without any."""
        return self.busy_s / self.completions if self.completions > 0 else None

    @property
    def bound(self) -> float | None:
        """X <= m / D: the throughput at which this resource would be busy all the time; None when D is
        unknown (nothing completed) or 0 (nothing measured busy: no bound)."""
        demand = self.demand_s
        return bottleneck_bound(demand, self.servers) if demand else None


def utilisation(busy_s: float, elapsed_s: float, servers: int = 1) -> float:
    """U = B / (m T)."""
    return Demand(busy_s, elapsed_s, 0.0, servers).utilisation


def service_demand(utilisation: float, throughput: float, servers: int = 1) -> float:
    """D = m U / X (the utilisation law solved for D); with m = 1, D = U / X."""
    if not throughput > 0:
        raise ValueError(f"throughput must be above 0, got {throughput}")
    if utilisation < 0:
        raise ValueError(f"utilisation is 0 or more, got {utilisation}")
    return servers * utilisation / throughput


def bottleneck_bound(demand_s: float, servers: int = 1) -> float:
    """X <= m / D."""
    if not demand_s > 0:
        raise ValueError(f"a service demand is above 0, got {demand_s}")
    return servers / demand_s


def bottleneck(demands: Mapping[str, tuple[float, int]]) -> tuple[str, float]:
    """The resource with the lowest bound m / D among {name: (D, m)}, and that bound."""
    if not demands:
        raise ValueError("no resource")
    bounds = {name: bottleneck_bound(d, m) for name, (d, m) in demands.items()}
    name = min(bounds, key=lambda k: bounds[k])
    return name, bounds[name]


def asymptotic_bound(population: float, demands: Mapping[str, tuple[float, int]], think_s: float = 0.0) -> float:
    """X(N) <= min(N / (D_total + Z), min_k m_k / D_k): the balanced-job asymptote of a closed system."""
    if population < 0 or think_s < 0:
        raise ValueError("population and think time are 0 or more")
    total = sum(d for d, _ in demands.values())
    light = population / (total + think_s) if total + think_s > 0 else math.inf
    return min(light, bottleneck(demands)[1])


def littles_law_population(throughput: float, residence_s: float) -> float:
    """N = X R: requests in the system on average."""
    return throughput * residence_s


@dataclass(frozen=True)
class MarginalDemand:
    """busy servers = idle + demand_s x throughput, fitted over windows."""

    demand_s: float
    idle: float  # servers busy at no load (background work)
    windows: int

    def bound(self, servers: int) -> float | None:
        """X <= (m - idle) / D; None without a positive slope or with the idle work alone filling the servers."""
        if self.demand_s <= 0 or servers - self.idle <= 0:
            return None
        return (servers - self.idle) / self.demand_s


def marginal_demand(busy_servers: Sequence[float], throughput: Sequence[float]) -> MarginalDemand | None:
    """The least-squares line busy = idle + D X over windows (at least 3, with at least two throughputs);
    idle is kept at 0 or more (a negative one refits through the origin)."""
    x = np.asarray(throughput, dtype=float)
    y = np.asarray(busy_servers, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) <= 0:
        return None
    slope, idle = np.polyfit(x, y, 1)
    if idle < 0:
        slope, idle = float(np.dot(x, y) / np.dot(x, x)), 0.0
    return MarginalDemand(float(slope), float(idle), len(x))
