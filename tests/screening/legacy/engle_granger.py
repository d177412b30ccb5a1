"""The Engle–Granger cointegration test for many pairs at once.

For a pair (y, x) over a formation window, the cointegrating regression is
``log y = alpha + beta log x + e``; the test is an augmented Dickey–Fuller regression on
the residuals without a constant,
``diff(e)_t = rho e_{t-1} + sum_j gamma_j diff(e)_{t-j} + u_t``, whose t-statistic on
``rho`` is compared with MacKinnon's response surface for two variables. This is
``statsmodels.tsa.stattools.coint(log y, log x, trend="c")``, computed for all pairs from
cross-products of the symbols' series instead of one regression per pair: every sum the
ADF regression needs is a quadratic form in the two legs' (lagged) series, so one
matrix product over all symbols serves every pair.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tests.screening.legacy._mackinnon import engle_granger_pvalue

__all__ = ["EngleGrangerResult", "engle_granger", "hedge_ratios"]

# statsmodels' coint treats R^2 >= 1 - 100 sqrt(eps) as perfectly collinear.
_COLLINEAR_R2 = 1 - 100 * np.sqrt(np.finfo(float).eps)


@dataclass(frozen=True)
class EngleGrangerResult:
    """Per-pair results, each an array of shape (n_pairs,)."""

    hedge_ratio: np.ndarray
    intercept: np.ndarray
    adf_stat: np.ndarray
    pvalue: np.ndarray
    used_lag: np.ndarray
    nobs: np.ndarray
    reason: np.ndarray  # "" when the statistic is valid, else why it is NaN


def hedge_ratios(
    gram: np.ndarray, means: np.ndarray, y: np.ndarray, x: np.ndarray, method: str = "ols"
) -> tuple[np.ndarray, np.ndarray]:
    """Hedge ratio and intercept of ``log y`` on ``log x`` for index arrays ``y``, ``x``.

    ``gram`` is Z'Z of the centred log prices and ``means`` their means. ``ols``
    minimises vertical distances (the Engle–Granger regression); ``tls`` (total least
    squares) minimises orthogonal ones and treats both legs alike.
    """
    sxx, syy, sxy = gram[x, x], gram[y, y], gram[y, x]
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "ols":
            beta = sxy / sxx
        elif method == "tls":
            beta = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy**2)) / (2 * sxy)
        else:
            raise ValueError(f"hedge method must be 'ols' or 'tls', not {method!r}")
    return beta, means[y] - beta * means[x]


def _lagged_features(z: np.ndarray, lags: int, start: int) -> np.ndarray:
    """Columns [level, diff lag 1..lags, diff] of every symbol for rows t = start..T-2.

    Layout is feature-major: column ``f * N + s`` is feature ``f`` of symbol ``s``.
    """
    d = np.diff(z, axis=0)
    n_rows = d.shape[0] - start
    blocks = [z[start : start + n_rows]]
    blocks += [d[start - j : start - j + n_rows] for j in range(1, lags + 1)]
    blocks.append(d[start : start + n_rows])
    return np.concatenate(blocks, axis=1)


def _pair_blocks(
    gram: np.ndarray,
    n_symbols: int,
    n_features: int,
    y: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
) -> np.ndarray:
    """Per pair, the (F, F) cross-product matrix of the residual's features."""
    offsets = np.arange(n_features) * n_symbols
    iy = offsets[None, :] + y[:, None]
    ix = offsets[None, :] + x[:, None]
    b = beta[:, None, None]
    gyy = gram[iy[:, :, None], iy[:, None, :]]
    gyx = gram[iy[:, :, None], ix[:, None, :]]
    gxx = gram[ix[:, :, None], ix[:, None, :]]
    return gyy - b * (gyx + np.swapaxes(gyx, 1, 2)) + b * b * gxx


def _ols_parts(a: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients, SSR and (X'X)^-1 of diff(e)_t on [level, p diff lags]."""
    target = a.shape[-1] - 1
    xtx = a[:, : p + 1, : p + 1]
    xty = a[:, : p + 1, target]
    try:
        inverse = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:  # a degenerate spread; its statistic becomes NaN
        inverse = np.linalg.pinv(xtx)
    coef = np.einsum("nij,nj->ni", inverse, xty)
    ssr = a[:, target, target] - np.einsum("ni,ni->n", coef, xty)
    return coef, ssr, inverse


def _information_criterion(ssr: np.ndarray, nobs: int, k: int, method: str) -> np.ndarray:
    # statsmodels OLS without a constant: -2 llf + penalty * k.
    with np.errstate(divide="ignore", invalid="ignore"):
        llf2 = nobs * (np.log(2 * np.pi) + np.log(ssr / nobs) + 1)
    return llf2 + (2 * k if method == "aic" else np.log(nobs) * k)


def engle_granger(
    log_prices: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    *,
    max_lag: int = 1,
    autolag: Literal["aic", "bic"] | None = None,
    hedge: Literal["ols", "tls"] = "ols",
    chunk_size: int = 20_000,
    n_jobs: int = 2,
    progress: Callable[[int], None] | None = None,
) -> EngleGrangerResult:
    """Engle–Granger tests of ``log y`` on ``log x`` for many pairs.

    Parameters
    ----------
    log_prices : ndarray of shape (n_observations, n_symbols)
        Log prices of the formation window, no missing values.
    y, x : ndarray of int, shape (n_pairs,)
        Column indices of the dependent and independent leg of each pair.
    max_lag : int
        Lagged differences in the ADF regression; with ``autolag`` the largest tried.
    autolag : {"aic", "bic"}, optional
        Choose the lag per pair by information criterion on a common sample, then refit
        with the chosen lag, as statsmodels does.
    hedge : {"ols", "tls"}
        How the hedge ratio is estimated.
    chunk_size : int
        Pairs processed at a time (bounds memory at about ``chunk_size * 4 * F**2``
        floats, F = max_lag + 2).
    n_jobs : int
        Threads working on chunks (NumPy releases the GIL in the heavy parts).
    progress : callable, optional
        Called with the number of pairs finished after each chunk.

    Returns
    -------
    EngleGrangerResult
        NaN statistics carry a ``reason``: a constant series or (almost) perfectly
        collinear legs, where the test is not defined.
    """
    values = np.asarray(log_prices, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError("log_prices must be a 2-D array (n_observations, n_symbols)")
    n_obs, n_symbols = values.shape
    y = np.asarray(y, dtype=np.intp)
    x = np.asarray(x, dtype=np.intp)
    if max_lag < 0:
        raise ValueError("max_lag must be >= 0")
    if max_lag > n_obs // 2 - 1:
        raise ValueError(
            f"max_lag {max_lag} needs at least {2 * (max_lag + 1)} observations, got {n_obs}"
        )
    if n_obs - 1 - max_lag <= max_lag + 1:
        raise ValueError(f"{n_obs} observations are too few for max_lag {max_lag}")
    if autolag not in (None, "aic", "bic"):
        raise ValueError(f"autolag must be 'aic', 'bic' or None, not {autolag!r}")

    means = values.mean(axis=0)
    z = values - means
    gram = z.T @ z
    beta, alpha = hedge_ratios(gram, means, y, x, hedge)
    constant = np.ptp(values, axis=0) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = gram[y, x] ** 2 / (gram[x, x] * gram[y, y])
    reason = np.full(len(y), "", dtype=object)
    reason[r2 >= _COLLINEAR_R2] = "legs are (almost) perfectly collinear"
    reason[constant[y] | constant[x]] = "constant price series"
    valid = reason == ""
    safe_beta = np.where(valid, beta, 0.0)

    n_features = max_lag + 2
    features = _lagged_features(z, max_lag, start=max_lag)
    big_gram = features.T @ features
    n_rows = features.shape[0]
    early = z[: max_lag + 1]  # rows the lag-L refit adds in front of the common sample

    stat = np.full(len(y), np.nan)
    used = np.full(len(y), max_lag, dtype=np.int64)
    nobs = np.full(len(y), n_rows, dtype=np.int64)

    def run(chunk: slice) -> None:
        cy, cx, cb = y[chunk], x[chunk], safe_beta[chunk]
        a = _pair_blocks(big_gram, n_symbols, n_features, cy, cx, cb)
        a[~valid[chunk]] = np.eye(n_features)  # placeholders; their statistic is NaN
        lags = np.full(len(cy), max_lag)
        if autolag is not None:
            criteria = np.stack(
                [
                    _information_criterion(_ols_parts(a, p)[1], n_rows, p + 1, autolag)
                    for p in range(max_lag + 1)
                ],
                axis=1,
            )
            lags = np.nanargmin(np.where(np.isnan(criteria), np.inf, criteria), axis=1)
        t_stat = np.full(len(cy), np.nan)
        rows = np.full(len(cy), n_rows)
        for lag in np.unique(lags):
            members = np.nonzero(lags == lag)[0]
            keep = [*range(lag + 1), n_features - 1]
            block = a[np.ix_(members, keep, keep)]
            if lag < max_lag:
                block = block + _extra_rows(
                    early, cy[members], cx[members], cb[members], int(lag), max_lag
                )
            n_lag = n_rows + (max_lag - int(lag))
            coef, ssr, inverse = _ols_parts(block, int(lag))
            with np.errstate(divide="ignore", invalid="ignore"):
                sigma2 = ssr / (n_lag - (lag + 1))
                t_stat[members] = coef[:, 0] / np.sqrt(sigma2 * inverse[:, 0, 0])
            rows[members] = n_lag
        stat[chunk] = t_stat
        used[chunk] = lags
        nobs[chunk] = rows
        if progress is not None:
            progress(len(cy))

    chunks = [slice(i, min(i + chunk_size, len(y))) for i in range(0, len(y), chunk_size)]
    if n_jobs > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(run, chunks))
    else:
        for chunk in chunks:
            run(chunk)

    stat[~valid] = np.nan
    return EngleGrangerResult(
        hedge_ratio=np.where(constant[y] | constant[x], np.nan, beta),
        intercept=np.where(constant[y] | constant[x], np.nan, alpha),
        adf_stat=stat,
        pvalue=engle_granger_pvalue(stat),
        used_lag=used,
        nobs=nobs,
        reason=reason,
    )


def _extra_rows(
    early: np.ndarray, y: np.ndarray, x: np.ndarray, beta: np.ndarray, lag: int, max_lag: int
) -> np.ndarray:
    """Cross-products of the rows t = lag..max_lag-1 that a lag-``lag`` refit adds."""
    e = early[:, y] - beta[None, :] * early[:, x]  # (max_lag + 1, pairs)
    d = np.diff(e, axis=0)
    rows = []
    for t in range(lag, max_lag):
        rows.append(np.stack([e[t], *[d[t - j] for j in range(1, lag + 1)], d[t]], axis=1))
    stacked = np.stack(rows, axis=1)  # (pairs, rows, lag + 2)
    return np.einsum("nri,nrj->nij", stacked, stacked)
