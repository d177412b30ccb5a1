from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow_pairs_energy import VolatilityRegime
from numpy.testing import assert_allclose

from mlflow_pairs.features import PairFrame
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.plugins import get_features, get_universes


def test_registers_universe_and_feature() -> None:
    universe = get_universes()["energy"]
    assert (universe.sector, universe.symbols, universe.plugin) == (
        "energy",
        ("CVX", "XOM", "RRC"),
        "energy",
    )
    assert isinstance(get_features()["energy_vol_regime"], VolatilityRegime)


def test_universe_loads_real_prices() -> None:
    panel = load_panel(universe="energy", start="1990-01-02", end="1990-01-02")
    assert_allclose(panel.prices.iloc[0].to_numpy(), [4.991, 4.068, 3.322])


def test_volatility_regime_against_numpy() -> None:
    rng = np.random.default_rng(3)
    index = pd.bdate_range("2021-01-01", periods=90)
    y = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.02, 90))), index=index)
    x = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.01, 90))), index=index)
    pair = PairFrame.from_prices(y, x, hedge_ratio=0.8, intercept=0.1)
    values = VolatilityRegime(short=5, long=20).compute(pair)["energy_vol_regime"].to_numpy()
    spread = np.log(y.to_numpy()) - 0.8 * np.log(x.to_numpy()) - 0.1
    change = np.diff(spread)  # change[k] is the change into day k + 1
    expected = np.full(90, np.nan)
    for t in range(20, 90):
        expected[t] = np.std(change[t - 5 : t], ddof=1) / np.std(change[t - 20 : t], ddof=1)
    assert_allclose(values, expected, rtol=1e-12)
