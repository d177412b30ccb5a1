"""Core features against hand computations with NumPy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from mlflow_pairs.features import (
    FeatureError,
    PairFrame,
    ReturnCorrelation,
    SpreadReturn,
    SpreadVolatility,
    SpreadZScore,
    compute_features,
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


def test_compute_features_checks_declared_columns(pair: PairFrame) -> None:
    class Liar(SpreadReturn):
        columns = ("something_else",)

    combined = compute_features(pair, [SpreadZScore(), SpreadReturn()])
    assert list(combined.columns) == ["spread_zscore", "spread_return"]
    with pytest.raises(FeatureError, match=r"'spread_return' returned columns \['spread_return'\]"):
        compute_features(pair, [Liar()])


def test_windows_must_be_meaningful() -> None:
    with pytest.raises(ValueError, match="window must be at least 2"):
        SpreadZScore(window=1)
