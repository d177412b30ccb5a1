"""Mean-reversion and variance-stability diagnostics of pair spreads, vectorised.

Quadratic statistics (half-life, Hurst exponent, return correlation) come from
cross-products of the symbols' series, like the Engle–Granger test; statistics that need
each spread's own path (mean crossings, ARCH-LM, Ljung–Box) are computed on chunks of
spreads at a time.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

__all__ = [
    "arch_lm_pvalue",
    "half_life",
    "half_life_from_sums",
    "hurst_exponent",
    "hurst_from_log_std",
    "hurst_lags",
    "ljung_box_pvalue",
    "mean_crossings",
    "return_correlation",
    "spreads",
]


def spreads(z: np.ndarray, y: np.ndarray, x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Spreads ``z_y - beta z_x`` of centred log prices, shape (n_observations, n_pairs)."""
    return cast(np.ndarray, z[:, y] - beta[None, :] * z[:, x])


def half_life(z: np.ndarray, y: np.ndarray, x: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Half-life in days of an AR(1) fitted to each spread.

    ``diff(s)_t = a + lambda s_{t-1} + u_t``; the half-life is ``-ln 2 / ln(1 + lambda)``,
    and infinite when ``1 + lambda`` is not in (0, 1) (no mean reversion).
    """
    level, change = z[:-1], np.diff(z, axis=0)
    n = level.shape[0]
    sums_l, sums_d = level.sum(axis=0), change.sum(axis=0)
    g_ll, g_ld = level.T @ level, level.T @ change
    s_l = sums_l[y] - beta * sums_l[x]
    s_d = sums_d[y] - beta * sums_d[x]
    s_ll = g_ll[y, y] - 2 * beta * g_ll[y, x] + beta**2 * g_ll[x, x]
    s_ld = g_ld[y, y] - beta * (g_ld[y, x] + g_ld[x, y]) + beta**2 * g_ld[x, x]
    with np.errstate(divide="ignore", invalid="ignore"):
        return cast(np.ndarray, half_life_from_sums(np, n, s_l, s_d, s_ll, s_ld))


def half_life_from_sums(xp: Any, n: int, sum_l: Any, sum_d: Any, s_ll: Any, s_ld: Any) -> Any:
    """Half-life of ``Δs_t = a + λ s_{t-1}`` from the sums over ``n`` days of the level,
    the change, the level squared and level times change; infinite without reversion.

    ``xp`` is the array module (NumPy or PyTorch) of the arguments.
    """
    lam = (n * s_ld - sum_l * sum_d) / (n * s_ll - sum_l**2)
    phi = 1 + lam
    result = -math.log(2) / xp.log(phi)
    return xp.where((phi > 0) & (phi < 1), result, math.inf)


def hurst_lags(n_observations: int, max_lag: int = 100) -> np.ndarray:
    """Log-spaced lags from 2 up to a quarter of the window (at most ``max_lag``)."""
    top = max(3, min(max_lag, n_observations // 4))
    return np.unique(np.round(np.geomspace(2, top, num=10)).astype(int))


def hurst_exponent(
    z: np.ndarray, y: np.ndarray, x: np.ndarray, beta: np.ndarray, lags: np.ndarray | None = None
) -> np.ndarray:
    """Hurst exponent from the scaling of lagged differences.

    ``std(s_{t+tau} - s_t)`` grows like ``tau ** H``; H is the least-squares slope of
    ``log std`` on ``log tau``. 0.5 is a random walk, below 0.5 mean-reverting.
    """
    lags = hurst_lags(z.shape[0]) if lags is None else np.asarray(lags)
    log_std = np.empty((len(lags), len(y)))
    for i, lag in enumerate(lags):
        d = z[lag:] - z[:-lag]
        n = d.shape[0]
        g = d.T @ d
        m = d.mean(axis=0)
        second = (g[y, y] - 2 * beta * g[y, x] + beta**2 * g[x, x]) / n
        mean = m[y] - beta * m[x]
        with np.errstate(invalid="ignore", divide="ignore"):
            log_std[i] = 0.5 * np.log(np.maximum(second - mean**2, 0.0))
    with np.errstate(invalid="ignore"):  # a degenerate spread has log std -inf: NaN
        return cast(np.ndarray, hurst_from_log_std(np, log_std, tuple(int(k) for k in lags)))


def hurst_from_log_std(xp: Any, log_std: Any, lags: tuple[int, ...]) -> Any:
    """Least-squares slope of ``log std`` (n_lags, n_pairs) on ``log lag``; ``xp`` is
    the array module of ``log_std``."""
    log_lag = np.log(np.asarray(lags, dtype=float))
    centred = log_lag - log_lag.mean()
    weights = centred / (centred @ centred)
    demeaned = log_std - log_std.mean(0)
    slope = demeaned[0] * float(weights[0])
    for k in range(1, len(lags)):
        slope = slope + float(weights[k]) * demeaned[k]
    return slope


def return_correlation(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Correlation of the two legs' daily log-returns."""
    r = np.diff(z, axis=0)
    r = r - r.mean(axis=0)
    g = r.T @ r
    with np.errstate(invalid="ignore", divide="ignore"):
        return cast(np.ndarray, g[y, x] / np.sqrt(g[y, y] * g[x, x]))


def mean_crossings(s: np.ndarray) -> np.ndarray:
    """How often each spread (columns of ``s``) crosses its mean."""
    sign = np.sign(s - s.mean(axis=0))
    sign = np.where(sign == 0, np.nan, sign)
    # A value exactly at the mean carries the previous side forward.
    filled = _ffill(sign)
    return cast(np.ndarray, np.sum(filled[1:] * filled[:-1] < 0, axis=0))


def _ffill(a: np.ndarray) -> np.ndarray:
    index = np.where(np.isnan(a), 0, np.arange(a.shape[0])[:, None])
    np.maximum.accumulate(index, axis=0, out=index)
    return a[index, np.arange(a.shape[1])[None, :]]


def ljung_box_pvalue(r: np.ndarray, lags: int = 10) -> np.ndarray:
    """Ljung–Box test of no autocorrelation up to ``lags``, per column of ``r``."""
    from scipy.special import chdtrc

    n = r.shape[0]
    c = r - r.mean(axis=0)
    denominator = np.sum(c * c, axis=0)
    q = np.zeros(r.shape[1])
    for j in range(1, lags + 1):
        acf = np.sum(c[j:] * c[:-j], axis=0) / denominator
        q += acf**2 / (n - j)
    return cast(np.ndarray, chdtrc(lags, n * (n + 2) * q))


def arch_lm_pvalue(r: np.ndarray, lags: int = 5) -> np.ndarray:
    """Engle's ARCH-LM test on the demeaned columns of ``r``: ``n R^2`` of the squared
    values on a constant and ``lags`` of their own lags, against chi-squared(lags)."""
    from scipy.special import chdtrc

    e2 = (r - r.mean(axis=0)) ** 2
    target = e2[lags:]
    n = target.shape[0]
    # Normal equations from column-wise dot products: no (n, pairs, lags) design copy.
    columns = [None] + [e2[lags - j : -j] for j in range(1, lags + 1)]  # None: constant

    def dot(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
        if a is None:
            if b is None:
                return np.full(target.shape[1], float(n))
            return cast(np.ndarray, b.sum(axis=0))
        if b is None:
            return cast(np.ndarray, a.sum(axis=0))
        return cast(np.ndarray, np.einsum("ij,ij->j", a, b))

    k = lags + 1
    xtx = np.empty((target.shape[1], k, k))
    xty = np.empty((target.shape[1], k))
    for i in range(k):
        xty[:, i] = dot(columns[i], target)
        for j in range(i, k):
            xtx[:, i, j] = xtx[:, j, i] = dot(columns[i], columns[j])
    coef = np.linalg.solve(xtx, xty[..., None])[..., 0]
    tss = np.einsum("ij,ij->j", target, target) - n * target.mean(axis=0) ** 2
    ssr = np.einsum("ij,ij->j", target, target) - np.einsum("pi,pi->p", coef, xty)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - ssr / tss
    return cast(np.ndarray, chdtrc(lags, n * r2))
