"""Where a curve bends: the knee of latency against throughput, past which more load mostly buys waiting.

A sweep's latency stays nearly flat while the platform has spare capacity, then climbs steeply once requests
queue. The knee is a model-free reading of where that happens, beside the USL fit's peak and the SLO capacity.
It uses the Kneedle algorithm (Satopää et al., "Finding a 'Kneedle' in a Haystack", 2011) as the `kneed` package
implements it: normalise both axes to [0, 1], take the difference to the straight line joining the ends, and
report the first local maximum of that difference that the curve then falls clearly below (sensitivity S).
Pure: numbers in, a number (or None) out.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

CURVES = ("convex", "concave")
DIRECTIONS = ("increasing", "decreasing")


def find_knee(
    x: Sequence[float],
    y: Sequence[float],
    *,
    curve: str = "convex",
    direction: str = "increasing",
    sensitivity: float = 1.0,
) -> float | None:
    """The x at the knee of y against x, or None when there is none (or fewer than 3 distinct x values).

    Points with a missing (NaN or infinite) x or y are dropped, the rest sorted by x, and repeated x values
    averaged. Latency p95 against throughput is `curve="convex", direction="increasing"` (the defaults).
    """
    if curve not in CURVES:
        raise ValueError(f"curve must be one of {', '.join(CURVES)}, not {curve!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be two lists of the same length, got shapes {xs.shape} and {ys.shape}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    distinct, inverse = np.unique(xs, return_inverse=True)  # sorted
    if len(distinct) < 3:
        return None
    means = np.bincount(inverse, weights=ys) / np.bincount(inverse)
    if np.ptp(means) == 0:
        return None  # a flat line has no knee (and Kneedle would divide by zero)
    # Here, not at the top: kneed imports matplotlib.pyplot and scipy (a second), and only a sweep needs a knee.
    from kneed import KneeLocator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns "No knee/elbow found": None says it
        locator = KneeLocator(
            distinct, means, S=sensitivity, curve=curve, direction=direction, interp_method="interp1d", online=False
        )
    knee = locator.knee
    return None if knee is None else float(knee)
