"""Every registered feature, plugins' included: changing prices after date t leaves every
value at dates up to t unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

from mlflow_pairs.features import PairFrame
from mlflow_pairs.jobs import load_panel
from mlflow_pairs.plugins import get_features

FEATURES = get_features()


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return load_panel(universe="sample-technology", start="2015-01-01", end="2016-12-31").prices


@pytest.mark.parametrize("name", sorted(FEATURES))
@pytest.mark.parametrize("cut", [150, 300, 480])
def test_future_prices_do_not_change_past_values(name: str, cut: int, prices: pd.DataFrame) -> None:
    feature = FEATURES[name]
    assert cut > feature.min_history
    original = PairFrame.from_prices(prices["MSFT"], prices["AAPL"], hedge_ratio=0.9, intercept=0.1)
    rng = np.random.default_rng(cut)
    shock = np.exp(rng.normal(0, 0.2, size=(len(prices) - cut, 2)))
    changed = prices.copy()
    changed.iloc[cut:] = (
        changed.iloc[cut:].to_numpy() * np.c_[shock[:, 0], shock[:, 0], shock[:, 1]]
    )
    perturbed = PairFrame.from_prices(
        changed["MSFT"], changed["AAPL"], hedge_ratio=0.9, intercept=0.1
    )
    before = feature.compute(original)
    after = feature.compute(perturbed)
    assert list(before.columns) == list(feature.columns)
    assert_array_equal(before.iloc[:cut].to_numpy(), after.iloc[:cut].to_numpy())
    # The perturbation reaches the future, so the test could fail: values after t differ.
    assert not np.allclose(
        before.iloc[cut:].to_numpy(), after.iloc[cut:].to_numpy(), equal_nan=True
    )
    # Values exist once the declared history is there.
    assert before.iloc[feature.min_history :].notna().all().all()


def test_plugins_features_are_covered() -> None:
    from importlib.metadata import entry_points

    installed = {ep.name for ep in entry_points(group="mlflow_pairs")}
    if "technology" in installed:
        assert "tech_jump_intensity" in FEATURES
    if "energy" in installed:
        assert "energy_vol_regime" in FEATURES
