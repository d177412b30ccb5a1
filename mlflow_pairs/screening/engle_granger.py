"""The Engle–Granger cointegration test for many pairs at once.

For a pair (y, x) over a formation window, the cointegrating regression is
``log y = alpha + beta log x + e``; the test is an augmented Dickey–Fuller regression on
the residuals without a constant,
``diff(e)_t = rho e_{t-1} + sum_j gamma_j diff(e)_{t-j} + u_t``, whose t-statistic on
``rho`` is compared with MacKinnon's response surface for two variables. This is
``statsmodels.tsa.stattools.coint(log y, log x, trend="c")``, computed for all pairs from
cross-products of the symbols' series instead of one regression per pair: every sum the
ADF regression needs is a quadratic form in the two legs' (lagged) series, so one
matrix product over all symbols serves every pair (see :mod:`._kernel`, which the
screening engine shares).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mlflow_pairs.screening import _kernel
from mlflow_pairs.screening._backend import NumpyBackend

__all__ = ["EngleGrangerResult", "engle_granger", "hedge_ratios"]


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
    from mlflow_pairs.screening.engine import ScreeningCriteria, kernel_settings

    values = np.asarray(log_prices, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError("log_prices must be a 2-D array (n_observations, n_symbols)")
    criteria = ScreeningCriteria(max_lag=max_lag, autolag=autolag, hedge=hedge)
    settings = _kernel.KernelSettings(
        **{**vars(kernel_settings(criteria, values.shape[0])), "hurst_lags": ()}
    )
    y = np.asarray(y, dtype=np.intp)
    x = np.asarray(x, dtype=np.intp)
    backend = NumpyBackend()
    block = _kernel.symbol_block(backend, values, values.mean(axis=0), settings)
    products = _kernel.block_products(backend, block, block, settings, diagonal=True)
    fields = ("beta_uv", "constant", "reason", "stat_uv", "p_uv", "lag_uv", "nobs_uv")
    out = {name: np.empty(len(y)) for name in fields}

    def run(chunk: slice) -> None:
        with np.errstate(all="ignore"):  # per thread: NaN marks the undefined tests
            tests = _kernel.engle_granger_tests(
                backend, block, block, products, y[chunk], x[chunk], settings, both=False
            )
        for name in fields:
            out[name][chunk] = tests[name]
        if progress is not None:
            progress(chunk.stop - chunk.start)

    chunks = [slice(i, min(i + chunk_size, len(y))) for i in range(0, len(y), chunk_size)]
    if n_jobs > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(run, chunks))
    else:
        for chunk in chunks:
            run(chunk)
    with np.errstate(invalid="ignore"):
        means = values.mean(axis=0)
        constant = out["constant"] > 0
        beta = np.where(constant, np.nan, out["beta_uv"])
        intercept = means[y] - beta * means[x]
    return EngleGrangerResult(
        hedge_ratio=beta,
        intercept=intercept,
        adf_stat=out["stat_uv"],
        pvalue=out["p_uv"],
        used_lag=out["lag_uv"].astype(np.int64),
        nobs=out["nobs_uv"].astype(np.int64),
        reason=np.asarray(_kernel.REASONS, dtype=object)[out["reason"].astype(np.intp)],
    )
