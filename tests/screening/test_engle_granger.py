"""The vectorised Engle–Granger test against statsmodels on real prices, and on
simulated processes with known truth."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.stattools import adfuller, coint

from mlflow_pairs.default_plugins.sample import SAMPLE_SECTORS
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.screening import ScreeningCriteria, engle_granger, screen

WINDOWS = [("2005-01-01", "2009-12-31"), ("2016-01-01", "2018-12-31")]
SECTORS = [sector for sector, symbols in SAMPLE_SECTORS.items() if len(symbols) > 1]


def _coint(y: np.ndarray, x: np.ndarray, maxlag: int, autolag: str | None) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return coint(y, x, trend="c", maxlag=maxlag, autolag=autolag)


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w[0][:4])
@pytest.mark.parametrize("sector", SECTORS)
def test_matches_statsmodels_on_every_within_sector_pair(
    sector: str, window: tuple[str, str]
) -> None:
    panel = load_panel(universe=f"sample-{sector}", start=window[0], end=window[1])
    result = screen(panel.prices, ScreeningCriteria(max_lag=1))
    log_prices = panel.log_prices
    n = len(panel.symbols)
    assert result.n_tested == n * (n - 1) // 2
    for row in result.table.itertuples():
        stat, pvalue, _ = _coint(log_prices[row.y], log_prices[row.x], 1, None)
        assert row.adf_stat == pytest.approx(stat, rel=1e-8)
        assert row.pvalue == pytest.approx(pvalue, abs=1e-6)
        reverse, reverse_p, _ = _coint(log_prices[row.x], log_prices[row.y], 1, None)
        assert row.adf_stat_reverse == pytest.approx(reverse, rel=1e-8)
        assert row.pvalue_reverse == pytest.approx(reverse_p, abs=1e-6)
        # The reported (traded) direction is the one with the stronger evidence; the
        # pair's p-value, which selection uses, is the weaker one.
        assert row.pvalue <= row.pvalue_reverse
        assert row.pair_pvalue == max(row.pvalue, row.pvalue_reverse)
        ols = np.polyfit(log_prices[row.x], log_prices[row.y], 1)
        assert row.hedge_ratio == pytest.approx(ols[0], rel=1e-9)
        assert row.intercept == pytest.approx(ols[1], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("method", ["aic", "bic"])
@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: w[0][:4])
def test_autolag_matches_statsmodels(method: str, window: tuple[str, str]) -> None:
    panel = load_panel(universe="sample-health_care", start=window[0], end=window[1])
    log_prices = panel.log_prices.to_numpy()
    n = log_prices.shape[1]
    y, x = np.array([(i, j) for i in range(n) for j in range(n) if i != j]).T
    result = engle_granger(log_prices, y, x, max_lag=10, autolag=method)  # type: ignore[arg-type]
    chosen = set()
    for k, (i, j) in enumerate(zip(y, x, strict=True)):
        stat, pvalue, _ = _coint(log_prices[:, i], log_prices[:, j], 10, method)
        assert result.adf_stat[k] == pytest.approx(stat, rel=1e-8)
        assert result.pvalue[k] == pytest.approx(pvalue, abs=1e-6)
        slope, intercept = np.polyfit(log_prices[:, j], log_prices[:, i], 1)
        resid = log_prices[:, i] - slope * log_prices[:, j] - intercept
        reference = adfuller(
            resid, maxlag=10, autolag=method, regression="n", store=True, result_object=False
        )
        assert result.used_lag[k] == reference[-1].usedlag
        chosen.add(int(result.used_lag[k]))
    if method == "aic":
        assert len(chosen) > 1  # the refit with a shorter lag (longer sample) is exercised


def _simulate(
    rng: np.random.Generator, n_obs: int, n_pairs: int, beta: float, theta: float
) -> pd.DataFrame:
    x = 4 + np.cumsum(rng.normal(0, 0.01, (n_obs, n_pairs)), axis=0)
    ou = np.zeros((n_obs, n_pairs))
    shocks = rng.normal(0, 0.005, (n_obs, n_pairs))
    for t in range(1, n_obs):
        ou[t] = (1 - theta) * ou[t - 1] + shocks[t]
    y = 0.3 + beta * x + ou
    index = pd.bdate_range("2010-01-01", periods=n_obs)
    columns = {f"Y{i}": np.exp(y[:, i]) for i in range(n_pairs)}
    columns.update({f"X{i}": np.exp(x[:, i]) for i in range(n_pairs)})
    return pd.DataFrame(columns, index=index)


def test_cointegrated_pairs_are_found_and_beta_recovered() -> None:
    rng = np.random.default_rng(2024)
    beta, n_pairs = 1.5, 200
    prices = _simulate(rng, 1000, n_pairs, beta=beta, theta=0.05)  # half-life ~ 13.5 days
    pairs = [(f"Y{i}", f"X{i}") for i in range(n_pairs)]
    log_prices = np.log(prices.to_numpy())
    result = engle_granger(log_prices, np.arange(n_pairs), np.arange(n_pairs) + n_pairs)
    # With 1,000 days and a half-life of two weeks the test has power near 1.
    assert np.mean(result.pvalue < 0.05) >= 0.98
    error = np.abs(result.hedge_ratio - beta)
    # Super-consistent OLS: stated tolerance |beta_hat - beta| < 0.1 for 95% of pairs,
    # median error under 0.03.
    assert np.quantile(error, 0.95) < 0.1
    assert np.median(error) < 0.03
    table = screen(prices, ScreeningCriteria(top_k=None), pairs=pairs).table
    half_life = table["half_life"].median()
    assert half_life == pytest.approx(np.log(2) / -np.log(1 - 0.05), rel=0.25)
    assert table["hurst"].median() < 0.5


def test_independent_random_walks_are_rejected_at_about_the_nominal_rate() -> None:
    rng = np.random.default_rng(99)
    n_obs, n_pairs = 1000, 2000
    walks = np.cumsum(rng.normal(0, 0.01, (n_obs, 2 * n_pairs)), axis=0)
    result = engle_granger(walks, np.arange(n_pairs), np.arange(n_pairs) + n_pairs)
    rate = np.mean(result.pvalue < 0.05)
    # 2,000 independent tests: a binomial 95% band around 5% is about 4.0%-6.0%.
    assert 0.035 <= rate <= 0.065, rate


def test_fdr_keeps_false_discoveries_under_q() -> None:
    rng = np.random.default_rng(5)
    q, proportions = 0.10, []
    for _ in range(5):
        true = _simulate(rng, 750, 30, beta=1.0, theta=0.08)
        noise = pd.DataFrame(
            np.exp(4 + np.cumsum(rng.normal(0, 0.01, (750, 600)), axis=0)),
            index=true.index,
            columns=[f"N{i}" for i in range(600)],
        )
        prices = pd.concat([true, noise], axis=1)
        pairs = [(f"Y{i}", f"X{i}") for i in range(30)]
        pairs += [(f"N{2 * i}", f"N{2 * i + 1}") for i in range(300)]
        criteria = ScreeningCriteria(
            fdr=q,
            top_k=None,
            min_crossings=0,
            max_hurst=1.0,
            max_half_life=1e9,
            min_half_life=0,
            min_correlation=-1,
        )
        table = screen(prices, criteria, pairs=pairs).table
        discoveries = table[table["selected"]]
        false = discoveries["y"].str.startswith("N").sum()
        proportions.append(false / max(len(discoveries), 1))
        assert discoveries["y"].str.startswith(("Y", "X")).sum() >= 25  # power kept
    assert np.mean(proportions) <= q


def test_degenerate_inputs_give_a_reason_not_a_crash() -> None:
    index = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(1)
    walk = np.exp(4 + np.cumsum(rng.normal(0, 0.01, 300)))
    prices = pd.DataFrame(
        {
            "A": walk,
            "B": walk * 2.0,
            "C": np.full(300, 10.0),
            "D": np.exp(4 + np.cumsum(rng.normal(0, 0.01, 300))),
        },
        index=index,
    )
    table = screen(prices).table.set_index(["y", "x"])
    identical = table.loc[("B", "A")] if ("B", "A") in table.index else table.loc[("A", "B")]
    assert np.isnan(identical["adf_stat"])
    assert np.isnan(identical["pvalue"])
    assert "collinear" in identical["reason"]
    assert not identical["selected"]
    constant = table[
        (table.index.get_level_values("y") == "C") | (table.index.get_level_values("x") == "C")
    ]
    assert len(constant) == 3
    assert (constant["reason"] == "constant price series").all()
    assert constant["pvalue"].isna().all()
    assert (table["pvalue"].dropna() > 0).all()  # never a silent p-value of 0


def test_too_few_observations_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"max_lag 5 needs at least 12 observations, got 8"):
        engle_granger(np.zeros((8, 2)), np.array([0]), np.array([1]), max_lag=5)
