"""Universal Scalability Law: how throughput X grows, levels off and falls back with concurrency N.

    X(N) = γN / (1 + α(N−1) + βN(N−1))

γ is the throughput of one user alone, α the share of the work that queues for a shared resource (contention:
Amdahl's serial fraction, throughput levels off towards γ/α) and β the cost of keeping shared state coherent
(crosstalk between every pair: past N* = sqrt((1−α)/β) adding load lowers throughput). A capacity sweep measures
X at a few N; the fit says where the platform peaks and why (Gunther, "Guerrilla Capacity Planning", 2007).

The fit is nonlinear least squares on X itself, bounded to α, β ≥ 0 and γ > 0 (scipy's trust-region reflective
`least_squares`), as R's `usl` package does. The classic linearised fit (a quadratic in N−1 through N/C(N) − 1,
with C the speed-up over X(1)) weighs the points unevenly and needs X(1) measured; on Gunther's SPEC SDM91 data it
puts the peak visibly elsewhere (tests/test_usl.py). Standard errors come from the Jacobian at the optimum,
cov = s²(JᵀJ)⁻¹ with s² = RSS/(n−3), and the 95% intervals use Student's t on n−3 degrees of freedom.

A fit that should not be trusted as it stands carries warnings (peak beyond the measured range, a coefficient at
its bound, standard errors larger than the value, a poor R²); input that cannot be fitted at all raises FitError.
Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from schoolsurge.errors import FitError

MIN_POINTS = 4  # three coefficients and at least one degree of freedom left for the errors
FEW_POINTS = 6  # below this the fit is flagged (R's usl package warns likewise)
MIN_R_SQUARED = 0.9
CONFIDENCE = 0.95
# A coefficient whose whole effect on X over the measured range is below this share is 0 (at its bound).
_NEGLIGIBLE = 1e-6


@dataclass(frozen=True)
class UslFit:
    """Fitted USL coefficients with their uncertainty and the warnings that qualify them."""

    alpha: float
    beta: float
    gamma: float
    alpha_se: float | None
    beta_se: float | None
    gamma_se: float | None
    alpha_ci: tuple[float, float] | None
    beta_ci: tuple[float, float] | None
    gamma_ci: tuple[float, float] | None
    r_squared: float
    residual_se: float
    points: int
    warnings: tuple[str, ...] = ()

    @property
    def degrees_of_freedom(self) -> int:
        return self.points - 3

    def throughput(self, n: float | np.ndarray) -> float | np.ndarray:
        """X(N) of the fitted model; a float for a number, an array for an array."""
        values = _usl(np.asarray(n, dtype=float), self.alpha, self.beta, self.gamma)
        return float(values) if np.ndim(values) == 0 else values

    @property
    def peak_concurrency(self) -> float | None:
        """N* = sqrt((1−α)/β), where throughput is highest; None without coherency delay (β = 0) or if α ≥ 1."""
        if self.beta <= 0 or self.alpha >= 1:
            return None
        return math.sqrt((1 - self.alpha) / self.beta)

    @property
    def peak_throughput(self) -> float | None:
        """X(N*), the most the model says the system delivers."""
        peak = self.peak_concurrency
        return None if peak is None else float(self.throughput(peak))

    @property
    def amdahl_ceiling(self) -> float | None:
        """γ/α, the throughput contention alone would let it approach; None without contention (α = 0)."""
        return None if self.alpha <= 0 else self.gamma / self.alpha

    def to_dict(self) -> dict[str, Any]:
        """Every figure, JSON-ready (None where a figure does not exist)."""
        return {
            "model": "usl",
            "alpha": _num(self.alpha),
            "beta": _num(self.beta),
            "gamma": _num(self.gamma),
            "alpha_se": _num(self.alpha_se),
            "beta_se": _num(self.beta_se),
            "gamma_se": _num(self.gamma_se),
            "confidence": CONFIDENCE,
            "alpha_ci": _pair(self.alpha_ci),
            "beta_ci": _pair(self.beta_ci),
            "gamma_ci": _pair(self.gamma_ci),
            "r_squared": _num(self.r_squared),
            "residual_se": _num(self.residual_se),
            "points": self.points,
            "degrees_of_freedom": self.degrees_of_freedom,
            "peak_concurrency": _num(self.peak_concurrency),
            "peak_throughput": _num(self.peak_throughput),
            "amdahl_ceiling": _num(self.amdahl_ceiling),
            "warnings": list(self.warnings),
        }


def fit_usl(concurrency: Sequence[float], throughput: Sequence[float]) -> UslFit:
    """Fit the USL to measured (N, X) points; FitError when they cannot be fitted (too few, bad values, flat)."""
    n, x = _validated(concurrency, throughput)
    result = _best_fit(n, x)
    alpha, beta, gamma = (float(v) for v in result.x)
    n_max = float(n.max())
    # A coefficient pinned at its bound by the optimiser comes back as a tiny positive number; call it 0.
    if alpha * (n_max - 1) < _NEGLIGIBLE:
        alpha = 0.0
    if beta * n_max * (n_max - 1) < _NEGLIGIBLE:
        beta = 0.0

    residuals = _usl(n, alpha, beta, gamma) - x
    rss = float(residuals @ residuals)
    dof = len(n) - 3
    s2 = rss / dof
    tss = float(((x - x.mean()) ** 2).sum())
    r_squared = 1.0 - rss / tss

    warnings: list[str] = []
    ses = _standard_errors(_jacobian((alpha, beta, gamma), n), s2)
    if ses is None:
        warnings.append(
            "the standard errors cannot be computed (singular Jacobian): these points do not determine all three "
            "coefficients; measure more concurrency levels"
        )
        cis: list[tuple[float, float] | None] = [None, None, None]
    else:
        from scipy import stats  # here, not at the top: a second of import that only a fit needs

        t = float(stats.t.ppf(0.5 + CONFIDENCE / 2, dof))
        # Clipped at 0: every coefficient is bounded below by it, a Wald interval past the bound means nothing.
        cis = [(max(0.0, v - t * se), v + t * se) for v, se in zip((alpha, beta, gamma), ses, strict=True)]

    fit = UslFit(
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        alpha_se=None if ses is None else ses[0],
        beta_se=None if ses is None else ses[1],
        gamma_se=None if ses is None else ses[2],
        alpha_ci=cis[0],
        beta_ci=cis[1],
        gamma_ci=cis[2],
        r_squared=r_squared,
        residual_se=math.sqrt(s2),
        points=len(n),
    )
    warnings += _qualms(fit, n, converged=result.status > 0)
    return replace(fit, warnings=tuple(warnings))


# ---- input -----------------------------------------------------------------------------------------------


def _validated(concurrency: Sequence[float], throughput: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    try:
        n = np.asarray(concurrency, dtype=float)
        x = np.asarray(throughput, dtype=float)
    except (TypeError, ValueError) as exc:
        raise FitError(f"concurrency and throughput must be numbers ({exc}); fix the values and try again") from None
    if n.ndim != 1 or x.ndim != 1 or len(n) != len(x):
        raise FitError(
            f"concurrency and throughput must be two lists of the same length, got shapes {n.shape} and {x.shape}"
        )
    if len(n) < MIN_POINTS:
        raise FitError(
            f"a USL fit needs at least {MIN_POINTS} measured points (concurrency, throughput), got {len(n)}: "
            "measure more load levels"
        )
    for name, values in (("concurrency", n), ("throughput", x)):
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if len(bad):
            i = int(bad[0])
            raise FitError(
                f"{name} must be a finite number above 0 at every point, but point {i + 1} has {values[i]!r}: "
                "drop or fix that point"
            )
    if len(np.unique(n)) < 3:
        raise FitError(
            f"a USL fit needs at least 3 different concurrency levels, got {len(np.unique(n))}: "
            "measure at more load levels"
        )
    if np.ptp(x) <= 1e-12 * float(np.abs(x).max()):
        raise FitError(
            f"throughput is the same ({x[0]:g}) at every concurrency: there is no curve to fit; "
            "measure over a range where the load changes throughput"
        )
    return n, x


# ---- the fit ---------------------------------------------------------------------------------------------


def _usl(n: np.ndarray, alpha: float, beta: float, gamma: float) -> np.ndarray:
    return gamma * n / (1 + alpha * (n - 1) + beta * n * (n - 1))


def _jacobian(p: Sequence[float], n: np.ndarray) -> np.ndarray:
    """∂X/∂(α, β, γ) at each point."""
    alpha, beta, gamma = p
    d = 1 + alpha * (n - 1) + beta * n * (n - 1)
    return np.column_stack((-gamma * n * (n - 1) / d**2, -gamma * n * n * (n - 1) / d**2, n / d))


def _starts(n: np.ndarray, x: np.ndarray) -> list[tuple[float, float, float]]:
    """A few starting points: the optimiser keeps the best of them (the surface can have flat valleys)."""
    order = np.argsort(n, kind="stable")
    gamma_first = float(x[order[0]] / n[order[0]])  # X1 itself when N = 1 was measured
    gamma_max = float((x / n).max())
    n_max = float(n.max())
    starts = [(0.01, 1e-4, gamma_max), (0.1, 1.0 / n_max**2, gamma_first), (0.0, 0.0, gamma_first)]
    linear = _linearised(n, x, gamma_first)
    if linear is not None:
        starts.append(linear)
    return starts


def _linearised(n: np.ndarray, x: np.ndarray, gamma: float) -> tuple[float, float, float] | None:
    """Gunther's quadratic on N/C(N) − 1 against N − 1 with C = X/γ: only a starting point, never the answer."""
    u = n - 1
    v = n * gamma / x - 1
    design = np.column_stack((u * u, u))
    try:
        (b, ab), *_ = np.linalg.lstsq(design, v, rcond=None)
    except np.linalg.LinAlgError:
        return None
    beta = max(float(b), 0.0)
    alpha = max(float(ab) - beta, 0.0)
    return (alpha, beta, gamma) if math.isfinite(alpha) and math.isfinite(beta) else None


def _best_fit(n: np.ndarray, x: np.ndarray) -> Any:
    from scipy.optimize import least_squares  # here, not at the top: only a fit needs scipy

    def residuals(p: np.ndarray) -> np.ndarray:
        return _usl(n, *p) - x

    def jacobian(p: np.ndarray) -> np.ndarray:
        return _jacobian(p, n)

    lower = [0.0, 0.0, 1e-12 * float(x.max())]
    best = None
    for start in _starts(n, x):
        p0 = np.clip(np.asarray(start, dtype=float), lower, np.inf)
        with np.errstate(all="ignore"):
            result = least_squares(
                residuals,
                p0,
                jac=jacobian,
                bounds=(lower, np.inf),
                method="trf",
                x_scale="jac",
                ftol=1e-12,
                xtol=1e-12,
                gtol=1e-12,
                max_nfev=5000,
            )
        if np.all(np.isfinite(result.x)) and np.isfinite(result.cost) and (best is None or result.cost < best.cost):
            best = result
    if best is None:
        raise FitError("the USL fit did not produce finite coefficients for these points: check the measurements")
    return best


def _standard_errors(jac: np.ndarray, s2: float) -> tuple[float, float, float] | None:
    """sqrt(diag(s²(JᵀJ)⁻¹)), with the columns scaled first: ∂X/∂β is about N² times ∂X/∂α."""
    norms = np.sqrt((jac * jac).sum(axis=0))
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        return None
    scaled = jac / norms
    jtj = scaled.T @ scaled
    if np.linalg.cond(jtj) > 1e13:
        return None
    try:
        variances = np.diag(np.linalg.inv(jtj)) / norms**2 * s2
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(variances)) or np.any(variances < 0):
        return None
    a, b, g = (float(v) for v in np.sqrt(variances))
    return a, b, g


def _qualms(fit: UslFit, n: np.ndarray, *, converged: bool) -> list[str]:
    """What makes this fit one to read with care, one line each."""
    out: list[str] = []
    n_min, n_max = float(n.min()), float(n.max())
    if not converged:
        out.append("the least-squares search stopped before converging: treat the coefficients as rough")
    if fit.points < FEW_POINTS:
        out.append(f"only {fit.points} points for 3 coefficients: the fit is weakly determined; measure more levels")
    if fit.alpha >= 1:
        out.append(f"α = {fit.alpha:.3g} ≥ 1: throughput does not grow with concurrency in the measured range")
    elif fit.alpha == 0:
        out.append("α is at its bound 0: no contention measured, the model has no Amdahl ceiling")
    if fit.beta == 0:
        out.append("β is at its bound 0: no coherency delay measured, so the model has no peak (it only levels off)")
    peak = fit.peak_concurrency
    if peak is not None and peak > n_max:
        out.append(
            f"the peak N* = {peak:.4g} lies beyond the largest measured concurrency {n_max:.4g}: it is extrapolated; "
            "measure past it to confirm"
        )
    elif peak is not None and peak < n_min:
        out.append(f"the peak N* = {peak:.4g} lies below the smallest measured concurrency {n_min:.4g}: extrapolated")
    for name, value, se in (
        ("α", fit.alpha, fit.alpha_se),
        ("β", fit.beta, fit.beta_se),
        ("γ", fit.gamma, fit.gamma_se),
    ):
        if value > 0 and se is not None and se > value:
            out.append(
                f"{name}'s standard error ({se:.3g}) exceeds its value ({value:.3g}): these points do not determine it"
            )
    if fit.r_squared < MIN_R_SQUARED:
        out.append(f"R² = {fit.r_squared:.3f} is below {MIN_R_SQUARED}: the USL does not describe these points well")
    return out


def _num(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _pair(values: tuple[float, float] | None) -> list[float | None] | None:
    return None if values is None else [_num(values[0]), _num(values[1])]
