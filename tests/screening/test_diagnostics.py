"""Diagnostics and FDR control against statsmodels and direct computations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose
from statsmodels.stats.diagnostic import acorr_ljungbox, het_arch
from statsmodels.stats.multitest import multipletests

from mlflow_pairs.screening import bh_qvalues
from mlflow_pairs.screening import diagnostics as d
from mlflow_pairs.screening.engle_granger import hedge_ratios


@pytest.fixture
def legs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    z = np.cumsum(rng.normal(0, 0.01, (700, 4)), axis=0)
    z[:, 1] = 0.8 * z[:, 0] + np.cumsum(rng.normal(0, 0.002, 700)) * 0.2 + rng.normal(0, 0.01, 700)
    z -= z.mean(axis=0)
    return z, np.array([1, 2, 3]), np.array([0, 0, 1]), np.array([0.8, 1.1, -0.4])


def _spread(z: np.ndarray, i: int, j: int, b: float) -> np.ndarray:
    return z[:, i] - b * z[:, j]


def test_half_life_against_statsmodels_ols(legs) -> None:  # type: ignore[no-untyped-def]
    z, y, x, beta = legs
    values = d.half_life(z, y, x, beta)
    for k in range(3):
        s = _spread(z, y[k], x[k], beta[k])
        fit = sm.OLS(np.diff(s), sm.add_constant(s[:-1])).fit()
        phi = 1 + fit.params[1]
        expected = -np.log(2) / np.log(phi) if 0 < phi < 1 else np.inf
        assert values[k] == pytest.approx(expected, rel=1e-9)


def test_half_life_of_a_known_ar1() -> None:
    rng = np.random.default_rng(3)
    phi, n = 0.9, 20_000
    s = np.zeros(n)
    for t in range(1, n):
        s[t] = phi * s[t - 1] + rng.normal()
    z = np.c_[s, np.zeros(n)]
    value = d.half_life(z - z.mean(axis=0), np.array([0]), np.array([1]), np.array([0.0]))[0]
    assert value == pytest.approx(np.log(2) / -np.log(phi), rel=0.05)


def test_hurst_against_a_direct_computation(legs) -> None:  # type: ignore[no-untyped-def]
    z, y, x, beta = legs
    lags = d.hurst_lags(len(z))
    values = d.hurst_exponent(z, y, x, beta, lags)
    for k in range(3):
        s = _spread(z, y[k], x[k], beta[k])
        tau = [np.std(s[lag:] - s[:-lag]) for lag in lags]
        assert values[k] == pytest.approx(np.polyfit(np.log(lags), np.log(tau), 1)[0], rel=1e-9)


def test_hurst_tells_random_walk_from_mean_reversion() -> None:
    rng = np.random.default_rng(4)
    walk = np.cumsum(rng.normal(size=(5000, 50)), axis=0)
    noise = rng.normal(size=(5000, 50))
    z = np.c_[walk, noise, np.zeros((5000, 1))]
    z -= z.mean(axis=0)
    zero = np.full(100, 100)
    h = d.hurst_exponent(z, np.arange(100), zero, np.zeros(100))
    assert np.mean(h[:50]) == pytest.approx(0.5, abs=0.05)
    assert np.mean(h[50:]) < 0.1


def test_crossings_and_correlation_by_hand(legs) -> None:  # type: ignore[no-untyped-def]
    z, y, x, beta = legs
    spreads = d.spreads(z, y, x, beta)
    counts = d.mean_crossings(spreads)
    for k in range(3):
        centred = spreads[:, k] - spreads[:, k].mean()
        manual = sum(1 for t in range(1, len(centred)) if centred[t] * centred[t - 1] < 0)
        assert counts[k] == manual
        returns = np.diff(z, axis=0)
        expected = np.corrcoef(returns[:, y[k]], returns[:, x[k]])[0, 1]
        assert d.return_correlation(z, y, x)[k] == pytest.approx(expected, rel=1e-10)
    assert d.mean_crossings(np.array([[1.0], [-1.0], [0.0], [0.0], [1.0], [-1.0]]))[0] == 3


def test_variance_checks_against_statsmodels() -> None:
    rng = np.random.default_rng(6)
    r = rng.standard_t(4, (600, 5)) * 0.01
    r[:, 0] *= np.exp(np.sin(np.arange(600) / 30))  # volatility clustering
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arch = [het_arch(r[:, i] - r[:, i].mean(), nlags=5)[1] for i in range(5)]
        box = [acorr_ljungbox(r[:, i], lags=[10])["lb_pvalue"].iloc[0] for i in range(5)]
    assert_allclose(d.arch_lm_pvalue(r, 5), arch, rtol=1e-8, atol=1e-12)
    assert_allclose(d.ljung_box_pvalue(r, 10), box, rtol=1e-8, atol=1e-12)
    assert d.arch_lm_pvalue(r, 5)[0] < 0.01


def test_bh_qvalues_against_statsmodels() -> None:
    rng = np.random.default_rng(2)
    p = rng.uniform(size=300) ** 3
    p[[5, 17]] = np.nan
    q = bh_qvalues(p)
    valid = ~np.isnan(p)
    assert_allclose(q[valid], multipletests(p[valid], method="fdr_bh")[1], rtol=1e-12)
    assert np.isnan(q[[5, 17]]).all()


def test_tls_hedge_ratio_is_the_principal_axis() -> None:
    rng = np.random.default_rng(9)
    lx = np.cumsum(rng.normal(0, 0.01, 500))
    ly = 0.7 * lx + rng.normal(0, 0.02, 500)
    values = np.c_[ly, lx]
    z = values - values.mean(axis=0)
    beta, alpha = hedge_ratios(z.T @ z, values.mean(axis=0), np.array([0]), np.array([1]), "tls")
    _, _, vt = np.linalg.svd(np.c_[z[:, 1], z[:, 0]], full_matrices=False)
    direction = vt[0]
    assert beta[0] == pytest.approx(direction[1] / direction[0], rel=1e-10)
    assert alpha[0] == pytest.approx(ly.mean() - beta[0] * lx.mean(), rel=1e-10)
