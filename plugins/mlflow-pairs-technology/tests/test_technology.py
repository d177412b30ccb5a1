from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow_pairs_technology import JumpIntensity
from numpy.testing import assert_allclose

from mlflow_pairs.features import PairFrame
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.plugins import get_features, get_universes, list_plugins


def test_registers_universe_and_feature() -> None:
    universe = get_universes()["technology"]
    assert universe.sector == "technology"
    assert universe.symbols == ("AAPL", "AMD", "MSFT")
    assert universe.plugin == "technology"
    assert isinstance(get_features()["tech_jump_intensity"], JumpIntensity)
    info = next(p for p in list_plugins() if p.name == "technology")
    assert info.distribution == "mlflow-pairs-technology"
    assert info.hooks == ("register_features", "register_universes")


def test_universe_loads_real_prices() -> None:
    panel = load_panel(universe="technology", start="2022-12-27", end="2022-12-28")
    assert_allclose(panel.prices.loc["2022-12-28"].to_numpy(), [125.674, 62.57, 233.434])


def test_jump_intensity_against_a_hand_count() -> None:
    index = pd.bdate_range("2020-01-01", periods=12)
    calm = np.exp(np.cumsum(np.r_[0.0, np.tile([0.01, -0.01], 6)[:11]]))
    y = pd.Series(calm, index=index)
    x = pd.Series(calm[::-1].copy(), index=index)
    y.iloc[8:] *= np.exp(0.5)  # one jump on the ninth day
    pair = PairFrame.from_prices(y, x, hedge_ratio=1.0)
    feature = JumpIntensity(window=3, lookback=4, threshold=3.0)
    values = feature.compute(pair)["tech_jump_intensity"]
    # Returns start on day 2, the yardstick needs 4 of them before the day: first judged
    # day is index 5; the window of 3 needs 3 judged days: first value at index 7.
    assert values.iloc[:7].isna().all()
    # Jump at index 8 counts in the windows ending at 8, 9 and 10.
    assert_allclose(values.iloc[7:11].to_numpy(), [0.0, 1 / 3, 1 / 3, 1 / 3])
    assert values.iloc[11] == 0.0
