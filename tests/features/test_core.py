"""Core features against hand computations with NumPy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from mlflow_pairs.features import (
    Feature,
    PairFrame,
    PairPanel,
    ReturnCorrelation,
    SpreadReturn,
    SpreadVolatility,
    SpreadZScore,
    spread_of,
)


@pytest.fixture
def pair() -> PairFrame:
    rng = np.random.default_rng(11)
    index = pd.bdate_range("2020-01-01", periods=80)
    x = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.01, 80))) * 50, index=index, name="X")
    y = pd.Series(np.exp(0.3 + 1.2 * np.log(x) + rng.normal(0, 0.02, 80)), index=index, name="Y")
    return PairFrame.from_prices(y, x, hedge_ratio=1.2, intercept=0.3)


def test_spread_definition(pair: PairFrame) -> None:
    expected = np.log(pair.y.to_numpy()) - 1.2 * np.log(pair.x.to_numpy()) - 0.3
    assert_allclose(pair.spread.to_numpy(), expected, rtol=1e-14)


def test_zscore_by_hand(pair: PairFrame) -> None:
    s = pair.spread.to_numpy()
    values = SpreadZScore(window=10).compute(pair)["spread_zscore"].to_numpy()
    assert np.isnan(values[:9]).all()
    for t in range(9, 80):
        window = s[t - 9 : t + 1]
        assert values[t] == pytest.approx((s[t] - window.mean()) / window.std(ddof=1), rel=1e-10)


def test_return_and_volatility_by_hand(pair: PairFrame) -> None:
    s = pair.spread.to_numpy()
    returns = SpreadReturn().compute(pair)["spread_return"].to_numpy()
    assert_allclose(returns[1:], np.diff(s), rtol=1e-12)
    vol = SpreadVolatility(window=5).compute(pair)["spread_volatility"].to_numpy()
    assert np.isnan(vol[:5]).all()
    for t in range(5, 80):
        assert vol[t] == pytest.approx(np.std(np.diff(s)[t - 5 : t], ddof=1), rel=1e-10)


def test_correlation_against_numpy(pair: PairFrame) -> None:
    values = ReturnCorrelation(window=30).compute(pair)["return_correlation"].to_numpy()
    ry, rx = np.diff(np.log(pair.y.to_numpy())), np.diff(np.log(pair.x.to_numpy()))
    for t in (30, 55, 79):
        expected = np.corrcoef(ry[t - 30 : t], rx[t - 30 : t])[0, 1]
        assert values[t] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "feature",
    [SpreadZScore(window=10), SpreadReturn(), SpreadVolatility(window=5), ReturnCorrelation(30)],
    ids=lambda f: f.name,
)
def test_one_pair_equals_its_column_of_the_panel(pair: PairFrame, feature: Feature) -> None:
    other = PairFrame.from_prices(pair.x, pair.y, hedge_ratio=0.7, intercept=-0.1)
    panel = PairPanel(
        pair.index,
        np.column_stack([pair.y, other.y]),
        np.column_stack([pair.x, other.x]),
        np.column_stack([pair.spread, other.spread]),
        np.array([pair.hedge_ratio, other.hedge_ratio]),
        np.array([pair.intercept, other.intercept]),
    )
    computed = feature.compute_panel(panel)
    for k, one in enumerate((pair, other)):
        alone = feature.compute(one)
        assert list(alone.columns) == list(feature.columns)
        assert alone.index.equals(one.spread.index)
        for column in feature.columns:
            np.testing.assert_allclose(alone[column], computed[column][:, k], rtol=1e-12)


def test_a_feature_implements_one_of_the_two_forms(pair: PairFrame) -> None:
    with pytest.raises(TypeError, match="Lazy must implement compute_panel or compute"):

        class Lazy(Feature):
            name = "lazy"
            columns = ("lazy",)

    class PerPair(Feature):
        name = "per_pair"
        columns = ("per_pair",)

        def compute(self, pair: PairFrame) -> pd.DataFrame:
            return pd.DataFrame({"per_pair": pair.spread * 2}, index=pair.spread.index)

    panel = PairPanel.of(pair)
    np.testing.assert_allclose(
        PerPair().compute_panel(panel)["per_pair"][:, 0], 2 * pair.spread.to_numpy()
    )


def test_the_spread_is_log_y_minus_hedged_log_x(pair: PairFrame) -> None:
    expected = np.log(pair.y) - 1.2 * np.log(pair.x) - 0.3
    np.testing.assert_allclose(pair.spread, expected, rtol=1e-15)
    assert spread_of(np.log(4.0), np.log(2.0), 2.0, 0.5) == pytest.approx(-0.5)


def test_windows_must_be_meaningful() -> None:
    with pytest.raises(ValueError, match="window must be at least 2"):
        SpreadZScore(window=1)
