"""The USL fit against published reference fits (Gunther's data as R's `usl` package ships and fits it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from schoolsurge.errors import FitError
from schoolsurge.models.usl import UslFit, fit_usl

DATA = Path(__file__).parent / "data" / "usl"


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_csv(DATA / f"{name}.csv", comment="#")
    return table.iloc[:, 0].to_numpy(float), table.iloc[:, 1].to_numpy(float)


def r_usl_interval(value: float, se: float, points: int) -> tuple[float, float]:
    """R usl's confint(): value ± se × qt(0.95, n − 1) (its convention, not the textbook one)."""
    half = se * stats.t.ppf(0.95, points - 1)
    return value - half, value + half


def test_synthetic_curve_gives_back_its_coefficients() -> None:
    fit = fit_usl(*load("synthetic"))
    assert fit.alpha == pytest.approx(0.02, rel=0.02)
    assert fit.beta == pytest.approx(0.02, rel=0.02)
    assert fit.gamma == pytest.approx(1.0, rel=0.02)
    assert fit.peak_concurrency == pytest.approx(7.0, rel=0.02)
    assert fit.r_squared > 0.9999
    assert fit.warnings == ()


def test_spec_sdm91_matches_the_published_fit() -> None:
    """R usl: summary(usl(throughput ~ load, specsdm91)) (tests/summary.Rout.save of the package)."""
    fit = fit_usl(*load("specsdm91"))
    assert fit.alpha == pytest.approx(2.773e-2, rel=0.01)
    assert fit.beta == pytest.approx(1.044e-4, rel=0.01)
    assert fit.gamma == pytest.approx(90.00, rel=0.01)
    assert fit.alpha_se == pytest.approx(9.122e-3, rel=0.02)
    assert fit.beta_se == pytest.approx(1.988e-5, rel=0.02)
    assert fit.gamma_se == pytest.approx(14.21, rel=0.02)
    assert fit.residual_se == pytest.approx(82.85, rel=0.001)
    assert fit.degrees_of_freedom == 4
    assert fit.peak_concurrency == pytest.approx(96.52, rel=0.005)
    assert fit.peak_throughput == pytest.approx(1884, rel=0.005)
    assert fit.amdahl_ceiling == pytest.approx(3246, rel=0.005)
    assert fit.warnings == ()


def test_spec_sdm91_intervals_are_student_t_on_n_minus_3_degrees_of_freedom() -> None:
    fit = fit_usl(*load("specsdm91"))
    t = stats.t.ppf(0.975, 4)
    # Wald intervals on n-3 degrees of freedom, clipped at the coefficients' lower bound 0
    assert fit.alpha_ci == pytest.approx((max(0.0, fit.alpha - t * fit.alpha_se), fit.alpha + t * fit.alpha_se))
    assert fit.beta_ci == pytest.approx((max(0.0, fit.beta - t * fit.beta_se), fit.beta + t * fit.beta_se))
    assert fit.gamma_ci == pytest.approx((max(0.0, fit.gamma - t * fit.gamma_se), fit.gamma + t * fit.gamma_se))


def test_raytracer_first_six_points_match_the_reference() -> None:
    """Reference: α 0.02444, β 0.00163, γ 20.85605 with intervals α 0.00754–0.04135, β 0.00110–0.00215,
    γ 19.26717–22.44492. Those intervals are R usl's confint(), estimate ± SE × qt(0.95, n−1): the same
    standard errors give them back; our own intervals are the wider two-sided 95% on n−3 degrees of freedom."""
    n, x = load("raytracer")
    fit = fit_usl(n[:6], x[:6])
    assert fit.alpha == pytest.approx(0.02444, rel=0.002)
    assert fit.beta == pytest.approx(0.00163, rel=0.005)
    assert fit.gamma == pytest.approx(20.85605, rel=1e-4)
    assert r_usl_interval(fit.alpha, fit.alpha_se, 6) == pytest.approx((0.00754, 0.04135), abs=2e-5)
    assert r_usl_interval(fit.beta, fit.beta_se, 6) == pytest.approx((0.00110, 0.00215), abs=2e-5)
    assert r_usl_interval(fit.gamma, fit.gamma_se, 6) == pytest.approx((19.26717, 22.44492), abs=2e-4)
    t = stats.t.ppf(0.975, 3)
    # Wald intervals on n-3 degrees of freedom, clipped at the coefficients' lower bound 0
    assert fit.alpha_ci == pytest.approx((max(0.0, fit.alpha - t * fit.alpha_se), fit.alpha + t * fit.alpha_se))
    # N* ≈ 24.5 lies past the last measured 20 processors: the fit says so.
    assert fit.peak_concurrency == pytest.approx(24.49, rel=0.005)
    assert any("beyond the largest measured concurrency" in w for w in fit.warnings)


def test_raytracer_all_points_match_the_published_fit_with_beta_at_its_bound() -> None:
    """R usl: coef() and confint() of the whole raytracer set (tests/confint.Rout.save of the package)."""
    n, x = load("raytracer")
    fit = fit_usl(n, x)
    assert fit.alpha == pytest.approx(0.0578, rel=0.002)
    assert fit.beta == 0.0
    assert fit.gamma == pytest.approx(21.8488, rel=1e-4)
    assert r_usl_interval(fit.alpha, fit.alpha_se, 11) == pytest.approx((0.033677, 0.081864), abs=2e-6)
    assert r_usl_interval(fit.beta, fit.beta_se, 11) == pytest.approx((-0.000214, 0.000214), abs=1e-6)
    assert r_usl_interval(fit.gamma, fit.gamma_se, 11) == pytest.approx((17.868380, 25.829306), abs=1e-4)
    assert fit.peak_concurrency is None and fit.peak_throughput is None
    assert fit.amdahl_ceiling == pytest.approx(21.8488 / 0.0578, rel=0.003)
    assert any("β is at its bound 0" in w for w in fit.warnings)


def test_the_linearised_fit_puts_the_spec_peak_elsewhere() -> None:
    """Gunther's linearisation (a quadratic through the origin of N/C(N) − 1 against N − 1, C = X/X(1)) weighs
    the points unevenly: on SPEC SDM91 its peak is about 15% further out than the least-squares fit's."""
    n, x = load("specsdm91")
    u, v = n - 1, n / (x / x[0]) - 1
    (beta, alpha_plus_beta), *_ = np.linalg.lstsq(np.column_stack((u * u, u)), v, rcond=None)
    linear_peak = math.sqrt((1 - (alpha_plus_beta - beta)) / beta)
    fit = fit_usl(n, x)
    assert linear_peak == pytest.approx(111.6, rel=0.01)
    assert abs(linear_peak - fit.peak_concurrency) / fit.peak_concurrency > 0.10


def test_the_fit_does_not_depend_on_the_order_of_the_points() -> None:
    n, x = load("specsdm91")
    order = np.array([3, 0, 6, 2, 5, 1, 4])
    assert fit_usl(n[order], x[order]).alpha == pytest.approx(fit_usl(n, x).alpha, rel=1e-6)


def test_linear_scaling_has_neither_peak_nor_ceiling() -> None:
    fit = fit_usl([1, 2, 4, 8, 16, 32], [3, 6, 12, 24, 48, 96])
    assert (fit.alpha, fit.beta) == (0.0, 0.0)
    assert fit.gamma == pytest.approx(3.0)
    assert fit.peak_concurrency is None and fit.amdahl_ceiling is None
    assert any("α is at its bound 0" in w for w in fit.warnings)
    assert any("β is at its bound 0" in w for w in fit.warnings)


def test_a_poor_fit_is_flagged() -> None:
    fit = fit_usl([1, 2, 3, 4, 5, 6, 7, 8], [10, 30, 12, 28, 11, 29, 12, 30])
    assert fit.r_squared < 0.9
    assert any(w.startswith("R² = ") for w in fit.warnings)


def test_few_points_are_flagged() -> None:
    fit = fit_usl([1, 2, 4, 8], [1, 1.9, 3.4, 5.0])
    assert fit.degrees_of_freedom == 1
    assert any("only 4 points" in w for w in fit.warnings)


def test_throughput_evaluates_the_model() -> None:
    fit = fit_usl(*load("synthetic"))
    assert isinstance(fit.throughput(7), float)
    assert fit.throughput(7) == pytest.approx(fit.peak_throughput)
    values = fit.throughput(np.array([1.0, 2.0]))
    assert isinstance(values, np.ndarray) and values == pytest.approx([1.0, 1.8868], rel=1e-3)


def test_to_dict_is_json_ready() -> None:
    n, x = load("raytracer")
    for fit in (fit_usl(*load("specsdm91")), fit_usl(n, x)):
        data = json.loads(json.dumps(fit.to_dict(), allow_nan=False))
        assert set(data) >= {"alpha", "beta", "gamma", "alpha_se", "alpha_ci", "r_squared", "warnings"}
        assert data["points"] == fit.points
        assert data["peak_concurrency"] == fit.peak_concurrency
        assert data["warnings"] == list(fit.warnings)


@pytest.mark.parametrize(
    ("n", "x", "says"),
    [
        ([1, 2, 4], [1, 2, 3], "at least 4 measured points"),
        ([], [], "at least 4 measured points"),
        ([1, 2, 4, 8], [1, 2, 3], "same length"),
        ([1, 2, 4, 8], [1, 2, float("nan"), 4], "throughput must be a finite number above 0"),
        ([1, 2, float("inf"), 8], [1, 2, 3, 4], "concurrency must be a finite number above 0"),
        ([0, 2, 4, 8], [1, 2, 3, 4], "concurrency must be a finite number above 0"),
        ([1, 2, 4, 8], [1, -2, 3, 4], "point 2"),
        ([1, 2, 4, 8], [1, 2, "many", 4], "must be numbers"),
        ([2, 2, 4, 4, 4], [1, 2, 3, 4, 5], "at least 3 different concurrency levels"),
        ([5, 5, 5, 5], [1, 2, 3, 4], "at least 3 different concurrency levels"),
        ([1, 2, 4, 8], [7, 7, 7, 7], "no curve to fit"),
    ],
)
def test_unusable_input_is_refused_in_one_line(n: list, x: list, says: str) -> None:
    with pytest.raises(FitError, match=says) as caught:
        fit_usl(n, x)
    assert "\n" not in str(caught.value)


def test_fit_is_frozen() -> None:
    fit = fit_usl(*load("synthetic"))
    assert isinstance(fit, UslFit)
    with pytest.raises(AttributeError):
        fit.alpha = 1.0  # type: ignore[misc]
