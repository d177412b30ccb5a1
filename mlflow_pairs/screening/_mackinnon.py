"""MacKinnon (1994) approximate p-values of the Engle–Granger test, vectorised.

The response-surface coefficients are those of statsmodels' ``mackinnonp`` (BSD-3-Clause,
statsmodels developers) for the case ``regression="c"`` with two variables, which is what
``statsmodels.tsa.stattools.coint(y, x, trend="c")`` reports.
"""

from __future__ import annotations

import numpy as np

__all__ = ["engle_granger_pvalue"]

# N = 2 variables, constant in the cointegrating regression.
_TAU_MAX = 0.92
_TAU_MIN = -18.86
_TAU_STAR = -2.62
_SMALL_P = np.array([2.92, 1.5012, 3.9796]) * np.array([1, 1, 1e-2])
_LARGE_P = np.array([2.1945, 6.4695, -2.9198, -4.2377]) * np.array([1, 1e-1, 1e-1, 1e-2])


def engle_granger_pvalue(stat: np.ndarray) -> np.ndarray:
    """Asymptotic p-values for Engle–Granger ADF statistics (two variables, constant).

    NaN statistics give NaN p-values.
    """
    from scipy.special import ndtr

    stat = np.asarray(stat, dtype=float)
    small = np.polyval(_SMALL_P[::-1], stat)
    large = np.polyval(_LARGE_P[::-1], stat)
    pvalue = ndtr(np.where(stat <= _TAU_STAR, small, large))
    pvalue = np.where(stat > _TAU_MAX, 1.0, pvalue)
    pvalue = np.where(stat < _TAU_MIN, 0.0, pvalue)
    return np.where(np.isnan(stat), np.nan, pvalue)
