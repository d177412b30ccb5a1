"""Uncertainty of backtest statistics against independent oracles.

Oracles: arch's ``StationaryBootstrap``, the published PSR/DSR formulas worked by hand
with ``scipy.stats``, a Monte-Carlo of the maximum of N normals, the known Sharpe ratio
of simulated returns and the analytic standard error of a paired mean difference.
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import StationaryBootstrap
from numpy.testing import assert_allclose
from scipy import stats

from mlflow_pairs.backtest.metrics import performance
from mlflow_pairs.backtest.uncertainty import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    paired_bootstrap_difference,
    paired_sharpe_test,
    probabilistic_sharpe_ratio,
    sharpe_interval,
    stationary_bootstrap_indices,
)


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def _skewed_returns(n: int, seed: int) -> np.ndarray:
    """Daily returns with negative skew and fat tails, positive mean."""
    rng = np.random.default_rng(seed)
    return 0.0008 + 0.01 * rng.standard_t(5, n) - 0.004 * rng.exponential(1.0, n) + 0.004


# --- stationary bootstrap -------------------------------------------------------------


def test_indices_are_valid_index_vectors() -> None:
    indices = stationary_bootstrap_indices(37, 50, 4.0, np.random.default_rng(1))
    assert indices.shape == (50, 37)
    assert np.issubdtype(indices.dtype, np.integer)
    assert indices.min() >= 0
    assert indices.max() < 37


def test_indices_are_deterministic_for_a_generator_seed() -> None:
    first = stationary_bootstrap_indices(100, 10, 5.0, np.random.default_rng(7))
    second = stationary_bootstrap_indices(100, 10, 5.0, np.random.default_rng(7))
    np.testing.assert_array_equal(first, second)


def test_block_lengths_are_geometric_with_the_mean_block() -> None:
    mean_block, n = 10.0, 5000
    indices = stationary_bootstrap_indices(n, 20, mean_block, np.random.default_rng(3))
    lengths = []
    for row in indices:
        # A block ends where the next index is not the successor (mod n) of this one.
        breaks = np.flatnonzero(row[1:] != (row[:-1] + 1) % n) + 1
        edges = np.r_[0, breaks, n]
        lengths.extend(np.diff(edges)[:-1])  # the last block of a row is truncated
    lengths_arr = np.asarray(lengths)
    # A new start equal to the successor merges two blocks: mean p⁻¹ · n / (n − 1).
    assert_allclose(lengths_arr.mean(), mean_block * n / (n - 1), rtol=0.05)
    # Geometric on {1, 2, ...}: P(L = 1) = p and P(L > k) = (1 − p)^k.
    assert_allclose(np.mean(lengths_arr == 1), 1 / mean_block, rtol=0.1)
    assert_allclose(np.mean(lengths_arr > 20), (1 - 1 / mean_block) ** 20, rtol=0.1)


def test_blocks_wrap_around_the_end() -> None:
    n = 10
    indices = stationary_bootstrap_indices(n, 200, 50.0, np.random.default_rng(5))
    wraps = (indices[:, :-1] == n - 1) & (indices[:, 1:] == 0)
    assert wraps.any()
    # With blocks much longer than the series almost every step continues, wrapping
    # included: P(continue) = 1 − p + p / n.
    continues = indices[:, 1:] == (indices[:, :-1] + 1) % n
    assert_allclose(continues.mean(), 1 - 1 / 50 + 1 / (50 * n), atol=0.01)


def test_mean_block_one_is_the_iid_bootstrap() -> None:
    indices = stationary_bootstrap_indices(20, 4000, 1.0, np.random.default_rng(2))
    counts = np.bincount(indices.ravel(), minlength=20) / indices.size
    assert_allclose(counts, np.full(20, 1 / 20), rtol=0.05)
    continues = indices[:, 1:] == (indices[:, :-1] + 1) % 20
    assert_allclose(continues.mean(), 1 / 20, atol=0.005)


def test_bootstrap_of_the_mean_matches_arch() -> None:
    x = _ar1(2000, 0.6, seed=11)
    block, reps = 20, 2000
    ours = x[stationary_bootstrap_indices(len(x), reps, block, np.random.default_rng(0))]
    ours_means = ours.mean(axis=1)
    arch_means = StationaryBootstrap(block, x, seed=1).apply(np.mean, reps).ravel()
    # Same distribution: the standard errors agree well inside Monte-Carlo noise (~2%).
    assert_allclose(ours_means.std(), arch_means.std(), rtol=0.1)
    assert_allclose(ours_means.mean(), arch_means.mean(), atol=0.1 * arch_means.std())
    # And both see the serial dependence the iid standard error would miss.
    assert ours_means.std() > 1.5 * x.std() / math.sqrt(len(x))


@pytest.mark.parametrize(("n", "n_boot", "mean_block"), [(0, 1, 1.0), (5, 0, 1.0), (5, 1, 0.5)])
def test_indices_reject_bad_arguments(n: int, n_boot: int, mean_block: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        stationary_bootstrap_indices(n, n_boot, mean_block, np.random.default_rng(0))


# --- Sharpe interval ------------------------------------------------------------------


def test_sharpe_matches_the_performance_metric() -> None:
    r = pd.Series(_skewed_returns(500, seed=4))
    sharpe, lower, upper = sharpe_interval(r, n_boot=200)
    assert_allclose(sharpe, r.mean() / r.std(ddof=1) * math.sqrt(252), rtol=1e-12)
    assert_allclose(sharpe, performance(r)["sharpe"], rtol=1e-12)
    assert lower < sharpe < upper


def test_sharpe_interval_covers_the_true_sharpe() -> None:
    mu, sigma, n = 0.0005, 0.01, 750
    true_sharpe = mu / sigma * math.sqrt(252)
    rng = np.random.default_rng(2024)
    covered = 0
    replications = 100
    for seed in range(replications):
        r = rng.normal(mu, sigma, n)
        _, lower, upper = sharpe_interval(r, n_boot=300, seed=seed)
        covered += lower <= true_sharpe <= upper
    assert 88 <= covered <= 99


@pytest.mark.parametrize(
    "returns", [np.zeros(300), np.full(300, 0.001), np.array([0.01]), np.array([])]
)
def test_sharpe_interval_of_flat_returns_is_zero(returns: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sharpe_interval(returns) == (0.0, 0.0, 0.0)


def test_sharpe_interval_counts_nan_as_a_flat_day() -> None:
    r = _skewed_returns(200, seed=8)
    with_gaps = r.copy()
    with_gaps[::10] = np.nan
    filled = np.where(np.isnan(with_gaps), 0.0, with_gaps)
    assert_allclose(
        sharpe_interval(with_gaps, n_boot=100), sharpe_interval(filled, n_boot=100), rtol=1e-12
    )


def test_sharpe_interval_widens_with_the_level() -> None:
    r = _skewed_returns(400, seed=9)
    _, lo90, hi90 = sharpe_interval(r, level=0.9, n_boot=400)
    _, lo99, hi99 = sharpe_interval(r, level=0.99, n_boot=400)
    assert lo99 < lo90 < hi90 < hi99
    with pytest.raises(ValueError, match="level"):
        sharpe_interval(r, level=1.0)


# --- probabilistic and deflated Sharpe ratio ------------------------------------------


def _psr_by_hand(r: np.ndarray, benchmark: float) -> float:
    sr = r.mean() / r.std(ddof=1)
    g3 = stats.skew(r)
    g4 = stats.kurtosis(r, fisher=False)
    z = (sr - benchmark) * math.sqrt(len(r) - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


@pytest.mark.parametrize("benchmark", [0.0, 0.02, -0.01])
def test_psr_hand_worked(benchmark: float) -> None:
    r = _skewed_returns(300, seed=12)
    assert stats.skew(r) < -0.2  # the moments matter in this sample
    assert_allclose(probabilistic_sharpe_ratio(r, benchmark), _psr_by_hand(r, benchmark))


def test_psr_is_one_half_at_the_benchmark() -> None:
    r = _skewed_returns(250, seed=13)
    assert_allclose(probabilistic_sharpe_ratio(r, r.mean() / r.std(ddof=1)), 0.5, rtol=1e-12)


def test_psr_grows_with_the_track_record() -> None:
    base = _skewed_returns(100, seed=14)
    assert base.mean() > 0
    # Repeating the sample keeps mean, skewness and kurtosis: only n grows.
    psr = [probabilistic_sharpe_ratio(np.tile(base, k)) for k in (1, 2, 4, 8)]
    assert all(a < b for a, b in itertools.pairwise(psr))
    assert 0.5 < psr[0] < psr[-1] < 1


def test_psr_penalises_negative_skew() -> None:
    rng = np.random.default_rng(15)
    r = 0.001 + 0.01 * rng.standard_normal(500)
    skewed = np.where(r < np.quantile(r, 0.02), r * 4, r)
    skewed = skewed - skewed.mean() + r.mean()
    skewed = (skewed - skewed.mean()) / skewed.std(ddof=1) * r.std(ddof=1) + r.mean()
    assert stats.skew(skewed) < stats.skew(r)
    assert probabilistic_sharpe_ratio(skewed) < probabilistic_sharpe_ratio(r)


@pytest.mark.parametrize("returns", [np.array([0.01, 0.02]), np.full(50, 0.001), np.zeros(50)])
def test_psr_of_degenerate_returns_is_nan(returns: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(probabilistic_sharpe_ratio(returns))
        assert math.isnan(deflated_sharpe_ratio(returns, n_trials=10))


def test_dsr_with_one_trial_is_the_psr_against_zero() -> None:
    r = _skewed_returns(400, seed=16)
    assert_allclose(deflated_sharpe_ratio(r, n_trials=1), _psr_by_hand(r, 0.0), rtol=1e-12)
    assert_allclose(deflated_sharpe_ratio(r, 1, trial_sharpes_variance=0.5), _psr_by_hand(r, 0.0))


def test_dsr_falls_as_more_variants_are_tried() -> None:
    r = _skewed_returns(750, seed=17)
    dsr = [deflated_sharpe_ratio(r, n_trials=n) for n in (1, 2, 5, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(dsr))


def test_dsr_hand_worked() -> None:
    r = _skewed_returns(600, seed=18)
    n_trials, variance = 25, 0.0009
    quantile = stats.norm.ppf
    sr_star = math.sqrt(variance) * (
        (1 - np.euler_gamma) * quantile(1 - 1 / n_trials)
        + np.euler_gamma * quantile(1 - 1 / (n_trials * math.e))
    )
    assert_allclose(
        deflated_sharpe_ratio(r, n_trials, trial_sharpes_variance=variance),
        _psr_by_hand(r, sr_star),
    )
    # The default variance is that of the per-period Sharpe estimator under the null.
    sr_star_null = math.sqrt(1 / (len(r) - 1)) * sr_star / math.sqrt(variance)
    assert_allclose(deflated_sharpe_ratio(r, n_trials), _psr_by_hand(r, sr_star_null))


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_max_sharpe_matches_monte_carlo(n_trials: int) -> None:
    std = 0.07
    draws = np.random.default_rng(19).standard_normal((20_000, n_trials))
    monte_carlo = std * draws.max(axis=1).mean()
    # The extreme-value approximation is within 2.5% at N = 10 and tighter beyond.
    assert_allclose(expected_max_sharpe(n_trials, std**2), monte_carlo, rtol=0.03)


def test_expected_max_sharpe_rejects_bad_arguments() -> None:
    assert expected_max_sharpe(1, 0.3) == 0.0
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="trial_sharpes_variance"):
        expected_max_sharpe(5, -0.1)


# --- paired tests ---------------------------------------------------------------------


def test_paired_sharpe_of_identical_series() -> None:
    r = _skewed_returns(300, seed=20)
    result = paired_sharpe_test(r, r.copy(), n_boot=300)
    assert set(result) == {"diff", "lower", "upper", "pvalue"}
    assert result["diff"] == 0.0
    assert result["lower"] == result["upper"] == 0.0
    assert result["pvalue"] == 1.0


def test_paired_sharpe_detects_a_strong_drift() -> None:
    b = np.random.default_rng(21).normal(0.0, 0.01, 500)
    a = b + 0.002
    result = paired_sharpe_test(a, b, n_boot=500)
    expected = (a.mean() / a.std(ddof=1) - b.mean() / b.std(ddof=1)) * math.sqrt(252)
    assert_allclose(result["diff"], expected, rtol=1e-12)
    assert 0 < result["lower"] < result["diff"] < result["upper"]
    assert result["pvalue"] < 0.01
    swapped = paired_sharpe_test(b, a, n_boot=500)
    assert_allclose(swapped["diff"], -result["diff"], rtol=1e-12)


def test_paired_sharpe_holds_its_size_under_the_null() -> None:
    rng = np.random.default_rng(22)
    rejections = 0
    replications = 60
    for seed in range(replications):
        common = rng.normal(0.0003, 0.01, 400)
        a = common + rng.normal(0.0, 0.005, 400)
        b = common + rng.normal(0.0, 0.005, 400)
        rejections += paired_sharpe_test(a, b, n_boot=200, seed=seed)["pvalue"] < 0.05
    # 5% nominal: 3 expected; 9 or more of 60 would be far out of line (binomial p < 0.01).
    assert rejections <= 8


def test_paired_sharpe_rejects_misaligned_series() -> None:
    with pytest.raises(ValueError, match="same length"):
        paired_sharpe_test(np.zeros(10), np.zeros(11))


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann–Whitney AUC; raises on a single class, as sklearn's does."""
    positive = labels == 1
    if positive.all() or not positive.any():
        raise ValueError("AUC needs both classes")
    u = stats.mannwhitneyu(scores[positive], scores[~positive]).statistic
    return float(u / (positive.sum() * (~positive).sum()))


def test_paired_difference_of_means_matches_the_analytic_interval() -> None:
    rng = np.random.default_rng(23)
    n = 400
    a = rng.normal(0.3, 1.0, n)
    b = 0.5 * a + rng.normal(0.0, 1.0, n)
    labels = rng.integers(0, 2, n)

    def mean_score(_labels: np.ndarray, scores: np.ndarray) -> float:
        return float(scores.mean())

    result = paired_bootstrap_difference(a, b, labels, mean_score, n_boot=2000, mean_block=1)
    d = a - b
    half_width = stats.norm.ppf(0.975) * d.std(ddof=0) / math.sqrt(n)
    assert_allclose(result["diff"], d.mean(), rtol=1e-12)
    assert_allclose(
        [result["lower"], result["upper"]],
        [d.mean() - half_width, d.mean() + half_width],
        atol=0.1 * half_width,
    )


def test_paired_auc_difference_of_a_good_and_a_random_scorer() -> None:
    rng = np.random.default_rng(24)
    labels = rng.integers(0, 2, 300)
    good = labels + rng.normal(0.0, 0.7, 300)
    noise = rng.normal(0.0, 1.0, 300)
    result = paired_bootstrap_difference(good, noise, labels, _auc, n_boot=200)
    assert_allclose(result["diff"], _auc(labels, good) - _auc(labels, noise), rtol=1e-12)
    assert 0 < result["lower"] < result["diff"] < result["upper"]


def test_paired_difference_skips_one_class_resamples() -> None:
    labels = np.r_[np.ones(3), np.zeros(57)]
    scores = np.linspace(0.0, 1.0, 60)
    # Long blocks: many resamples miss the three positives; _auc would raise on them.
    result = paired_bootstrap_difference(scores, scores[::-1], labels, _auc, n_boot=200)
    assert math.isfinite(result["lower"])
    assert result["lower"] <= result["diff"] <= result["upper"]
