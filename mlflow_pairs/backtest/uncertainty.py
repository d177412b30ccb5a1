"""Sampling uncertainty of backtest statistics (pure NumPy/SciPy).

A Sharpe ratio from a few years of daily returns is a noisy estimate, and the best of
many tried variants is biased upwards. This module puts numbers on both: stationary
bootstrap intervals that respect serial dependence (Politis & Romano, 1994), the
probabilistic Sharpe ratio (Bailey & López de Prado, 2012) and the deflated Sharpe
ratio that corrects for the number of trials (Bailey & López de Prado, 2014).

Conventions shared by every function here:

* ``returns`` are simple daily returns, one per trading day, as a 1-D array or a
  :class:`pandas.Series`; NaN counts as a flat day (0.0), as in
  :func:`mlflow_pairs.backtest.metrics.performance`.
* Annualised Sharpe ratios use 252 days and a zero risk-free rate,
  ``mean / std(ddof=1) * sqrt(252)``, the same as ``performance()["sharpe"]``; a
  constant series (no variation at all) has Sharpe 0.
* When ``mean_block`` is ``None`` the mean block length of the stationary bootstrap
  is ``max(1, round(n ** (1/3)))``: the ``n^(1/3)`` rate that Hall, Horowitz & Jing
  (1995) show is optimal for bootstrap variance and bias estimates, with constant 1
  (about 14 days for ten years of daily data).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from mlflow_pairs.backtest.metrics import TRADING_DAYS

__all__ = [
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "paired_bootstrap_difference",
    "paired_sharpe_test",
    "probabilistic_sharpe_ratio",
    "sharpe_interval",
    "stationary_bootstrap_indices",
]

#: Euler–Mascheroni constant, in the expected maximum of N standard normals.
EULER_GAMMA = 0.5772156649015329


def stationary_bootstrap_indices(
    n: int, n_boot: int, mean_block: float, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Resampling indices of the stationary bootstrap (Politis & Romano, 1994).

    Each resample is a concatenation of blocks of consecutive observations. A block
    starts at a uniformly drawn position and its length is geometric with mean
    ``mean_block`` (each step starts a new block with probability ``1 / mean_block``);
    a block that runs past the last observation wraps around to the first, which is
    what makes the resampled series stationary.

    Parameters
    ----------
    n : int
        Length of the series (number of observations, >= 1).
    n_boot : int
        Number of resamples (>= 1).
    mean_block : float
        Mean block length in observations (>= 1); 1 gives the iid bootstrap.
    rng : numpy.random.Generator
        Source of randomness; the result is a deterministic function of its state.

    Returns
    -------
    ndarray of int64, shape (n_boot, n)
        Row ``b`` holds the positions, in ``[0, n)``, of resample ``b``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not (math.isfinite(mean_block) and mean_block >= 1):
        raise ValueError(f"mean_block must be a finite number >= 1, got {mean_block}")
    starts = rng.integers(0, n, size=(n_boot, n), dtype=np.int64)
    new_block = rng.random((n_boot, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    positions = np.arange(n, dtype=np.int64)
    # Vectorised over resamples and steps: each step continues from the start of the
    # latest block at or before it, offset by the steps taken since.
    block_start = np.maximum.accumulate(np.where(new_block, positions, 0), axis=1)
    first = np.take_along_axis(starts, block_start, axis=1)
    return (first + (positions - block_start)) % n


def sharpe_interval(
    returns: ArrayLike,
    *,
    level: float = 0.95,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Annualised Sharpe ratio with a percentile stationary-bootstrap interval.

    Parameters
    ----------
    returns : array-like of shape (n_days,)
        Daily simple returns.
    level : float
        Coverage of the two-sided interval, in (0, 1).
    n_boot : int
        Number of bootstrap resamples.
    mean_block : float, optional
        Mean block length in days; ``None`` uses ``max(1, round(n ** (1/3)))``.
    seed : int
        Seed of :func:`numpy.random.default_rng`; equal seeds give equal results.

    Returns
    -------
    (sharpe, lower, upper) : tuple of float
        Annualised Sharpe ratio (252 days, zero risk-free rate) and the
        ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of its bootstrap
        distribution. Constant returns (all zero included) and series shorter than
        two days give ``(0.0, 0.0, 0.0)``.
    """
    _check_level(level)
    r = _as_returns(returns, "returns")
    if len(r) < 2 or np.ptp(r) == 0:
        return 0.0, 0.0, 0.0
    sharpe = float(_annualised_sharpe(r))
    rng = np.random.default_rng(seed)
    indices = stationary_bootstrap_indices(len(r), n_boot, _mean_block(len(r), mean_block), rng)
    lower, upper = np.quantile(_annualised_sharpe(r[indices]), _tails(level))
    return sharpe, float(lower), float(upper)


def probabilistic_sharpe_ratio(returns: ArrayLike, benchmark_sharpe: float = 0.0) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe``.

    The probabilistic Sharpe ratio of Bailey & López de Prado (2012),

        PSR = Φ((SR − SR*) · sqrt(n − 1) / sqrt(1 − γ3·SR + (γ4 − 1) / 4 · SR²)),

    where ``SR = mean / std(ddof=1)`` is the *per-period* (daily, not annualised)
    Sharpe ratio, γ3 the sample skewness and γ4 the sample (non-excess) kurtosis,
    both the biased moment estimators (``scipy.stats.skew`` and
    ``scipy.stats.kurtosis(fisher=False)`` with their defaults). Skewed or fat-tailed
    returns widen the Sharpe estimator's distribution and so lower the PSR.

    Parameters
    ----------
    returns : array-like of shape (n_days,)
        Daily simple returns.
    benchmark_sharpe : float
        SR*, the per-period Sharpe ratio to beat: divide an annualised benchmark by
        ``sqrt(252)`` first.

    Returns
    -------
    float
        A probability in [0, 1]; NaN for fewer than three returns or zero variance.
    """
    r = _as_returns(returns, "returns")
    if len(r) < 3 or np.ptp(r) == 0:
        return float("nan")
    sharpe = float(r.mean() / r.std(ddof=1))
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skewness = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    # Non-negative for any sample (Pearson: γ4 >= γ3² + 1); zero only for two-point data.
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if variance <= 0:
        return float("nan")
    z = (sharpe - benchmark_sharpe) * math.sqrt(len(r) - 1) / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(n_trials: int, trial_sharpes_variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios that are all noise.

    The benchmark SR* of the deflated Sharpe ratio (Bailey & López de Prado, 2014):

        SR* = sqrt(V) · ((1 − γ) · Φ⁻¹(1 − 1/N) + γ · Φ⁻¹(1 − 1/(N·e))),

    with γ the Euler–Mascheroni constant: the extreme-value approximation of the
    expected maximum of N independent normal estimates with mean 0 and variance V.

    Parameters
    ----------
    n_trials : int
        N, the number of variants tried (>= 1); one trial gives 0.
    trial_sharpes_variance : float
        V, variance of the trials' Sharpe ratios, in the units of the result
        (per-period for :func:`deflated_sharpe_ratio`).

    Returns
    -------
    float
        SR*, in the units of ``sqrt(trial_sharpes_variance)``.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not (math.isfinite(trial_sharpes_variance) and trial_sharpes_variance >= 0):
        raise ValueError(
            f"trial_sharpes_variance must be finite and >= 0, got {trial_sharpes_variance}"
        )
    if n_trials == 1:
        # Φ⁻¹(0) is −∞: with a single trial there is no selection to correct for.
        return 0.0
    quantiles = stats.norm.ppf([1.0 - 1.0 / n_trials, 1.0 - 1.0 / (n_trials * math.e)])
    expected = (1.0 - EULER_GAMMA) * quantiles[0] + EULER_GAMMA * quantiles[1]
    return float(math.sqrt(trial_sharpes_variance) * expected)


def deflated_sharpe_ratio(
    returns: ArrayLike, n_trials: int, trial_sharpes_variance: float | None = None
) -> float:
    """Probabilistic Sharpe ratio against the best of ``n_trials`` noise strategies.

    The deflated Sharpe ratio of Bailey & López de Prado (2014) is
    :func:`probabilistic_sharpe_ratio` with the benchmark
    ``SR* = expected_max_sharpe(n_trials, V)``: the Sharpe ratio the best of the
    tried variants would reach by luck alone. It falls as more variants are tried.

    Parameters
    ----------
    returns : array-like of shape (n_days,)
        Daily simple returns of the selected variant.
    n_trials : int
        Number of variants tried before this one was selected (>= 1); 1 gives the
        PSR against 0.
    trial_sharpes_variance : float, optional
        V, the variance across trials of their *per-period* (daily) Sharpe ratios;
        divide the variance of annualised ones by 252. When ``None``, ``1 / (n − 1)``:
        the variance of the per-period Sharpe estimator of ``n`` iid normal returns
        with true Sharpe 0, i.e. the trials are taken to be independent noise.

    Returns
    -------
    float
        A probability in [0, 1]; NaN for degenerate returns (see the PSR).
    """
    r = _as_returns(returns, "returns")
    if trial_sharpes_variance is None:
        if len(r) < 3:
            return float("nan")
        trial_sharpes_variance = 1.0 / (len(r) - 1)
    return probabilistic_sharpe_ratio(r, expected_max_sharpe(n_trials, trial_sharpes_variance))


def paired_sharpe_test(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_boot: int = 2000,
    mean_block: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Difference of two annualised Sharpe ratios on the same dates, with a bootstrap test.

    Both series are resampled with the same stationary-bootstrap indices, so the
    interval and the test account for their correlation (a paired test).

    The p-value is two-sided and null-centred (Davison & Hinkley, 1997, §4.4; Ledoit &
    Wolf, 2008): the bootstrap differences minus the observed one approximate the
    distribution of the estimator's error, so under H0 (equal Sharpe ratios)

        p = (1 + #{|d*_b − d| >= |d|}) / (n_boot + 1),

    which never is 0 and is exactly 1 when the observed difference is 0.

    Parameters
    ----------
    a, b : array-like of shape (n_days,)
        Daily simple returns of two variants on the same days.
    n_boot : int
        Number of bootstrap resamples.
    mean_block : float, optional
        Mean block length in days; ``None`` uses ``max(1, round(n ** (1/3)))``.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    dict
        ``diff``: Sharpe(a) − Sharpe(b), annualised; ``lower``, ``upper``: its 95%
        percentile bootstrap interval; ``pvalue``: of H0 Sharpe(a) = Sharpe(b).
    """
    x = _as_returns(a, "a")
    y = _as_returns(b, "b")
    if len(x) != len(y):
        raise ValueError(f"a and b must have the same length, got {len(x)} and {len(y)}")
    if len(x) < 2:
        raise ValueError(f"a and b need at least two returns, got {len(x)}")
    diff = float(_annualised_sharpe(x) - _annualised_sharpe(y))
    rng = np.random.default_rng(seed)
    indices = stationary_bootstrap_indices(len(x), n_boot, _mean_block(len(x), mean_block), rng)
    boot = _annualised_sharpe(x[indices]) - _annualised_sharpe(y[indices])
    lower, upper = np.quantile(boot, _tails(0.95))
    exceed = int(np.count_nonzero(np.abs(boot - diff) >= abs(diff)))
    return {
        "diff": diff,
        "lower": float(lower),
        "upper": float(upper),
        "pvalue": (1 + exceed) / (n_boot + 1),
    }


def paired_bootstrap_difference(
    score_a: ArrayLike,
    score_b: ArrayLike,
    labels: ArrayLike,
    metric: Callable[[NDArray[np.float64], NDArray[np.float64]], float],
    *,
    n_boot: int = 1000,
    mean_block: float | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Difference of a metric between two scorers on the same samples, with an interval.

    For instance the AUC of a model minus the AUC of a baseline on the same labelled
    samples. Both scorers are evaluated on the same stationary-bootstrap resamples
    (paired); resamples in which ``labels`` take a single value are skipped, since
    ranking metrics such as the AUC are undefined there.

    Parameters
    ----------
    score_a, score_b : array-like of shape (n_samples,)
        Scores of the two scorers, in the order of ``labels``.
    labels : array-like of shape (n_samples,)
        True labels (for instance 0/1).
    metric : callable
        ``metric(labels, scores) -> float``, e.g. ``sklearn.metrics.roc_auc_score``.
    n_boot : int
        Number of bootstrap resamples drawn (skipped ones included).
    mean_block : float, optional
        Mean block length in samples; ``None`` uses ``max(1, round(n ** (1/3)))``.
        Pass 1 for the iid bootstrap when the samples are not in time order.
    seed : int
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    dict
        ``diff``: metric(a) − metric(b) on all samples; ``lower``, ``upper``: 95%
        percentile bootstrap interval (NaN when every resample was skipped).
    """
    sa = np.asarray(score_a, dtype=float)
    sb = np.asarray(score_b, dtype=float)
    y = np.asarray(labels, dtype=float)
    if not (sa.ndim == sb.ndim == y.ndim == 1 and len(sa) == len(sb) == len(y)):
        raise ValueError(
            "score_a, score_b and labels must be 1-D of the same length, got shapes "
            f"{sa.shape}, {sb.shape} and {y.shape}"
        )
    if len(np.unique(y)) < 2:
        raise ValueError("labels must take at least two values")
    diff = float(metric(y, sa)) - float(metric(y, sb))
    rng = np.random.default_rng(seed)
    indices = stationary_bootstrap_indices(len(y), n_boot, _mean_block(len(y), mean_block), rng)
    boot = [
        float(metric(y[row], sa[row])) - float(metric(y[row], sb[row]))
        for row in indices
        if np.ptp(y[row]) > 0
    ]
    if not boot:
        return {"diff": diff, "lower": float("nan"), "upper": float("nan")}
    lower, upper = np.quantile(boot, _tails(0.95))
    return {"diff": diff, "lower": float(lower), "upper": float(upper)}


def _as_returns(values: ArrayLike, name: str) -> NDArray[np.float64]:
    r = np.asarray(values, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {r.shape}")
    r = np.where(np.isnan(r), 0.0, r)
    if not np.isfinite(r).all():
        raise ValueError(f"{name} must not contain infinite values")
    return r


def _annualised_sharpe(r: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sharpe ratio along the last axis; 0 where a row does not vary at all."""
    mean = r.mean(axis=-1)
    std = r.std(axis=-1, ddof=1)
    # Rounding leaves a tiny non-zero std on some constant rows; ptp is exact.
    varies = (np.ptp(r, axis=-1) > 0) & (std > 0)
    sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=varies)
    return cast(NDArray[np.float64], sharpe * math.sqrt(TRADING_DAYS))


def _mean_block(n: int, mean_block: float | None) -> float:
    return float(max(1, round(n ** (1 / 3)))) if mean_block is None else float(mean_block)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _tails(level: float) -> list[float]:
    return [(1 - level) / 2, (1 + level) / 2]
