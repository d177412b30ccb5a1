"""The walk-forward protocol: windows, and no look-ahead across a window's end."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mlflow_pairs.backtest import CostModel
from mlflow_pairs.backtest.walkforward import positions_table, run_walk_forward, windows
from mlflow_pairs.model import GarchGruModel, TrainingConfig
from mlflow_pairs.model.signals import SignalRule
from mlflow_pairs.screening import ScreeningCriteria
from tests.model.simulate import mean_reverting_pairs


def test_windows_roll_by_the_trading_length() -> None:
    plan = windows(1000, 600, 150)
    assert [(f.start, f.stop, t.start, t.stop) for f, t in plan] == [
        (0, 600, 600, 750),
        (150, 750, 750, 900),
        (300, 900, 900, 1000),
    ]
    assert len(windows(1000, 600, 150, max_windows=1)) == 1


def _run(prices: pd.DataFrame) -> list:
    def make(pairs):  # type: ignore[no-untyped-def]
        return GarchGruModel("energy", pairs, [], training=TrainingConfig(epochs=2, hidden_size=8))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_walk_forward(
            prices,
            sectors=None,
            criteria=ScreeningCriteria(max_half_life=1e9, min_crossings=0),
            make_model=make,
            rule=SignalRule(min_probability=0.0),
            costs=CostModel(),
            formation_days=500,
            trading_days=120,
            fallback_top_k=1,
        )


def test_future_prices_change_nothing_fitted_and_no_earlier_position() -> None:
    prices = mean_reverting_pairs(9, n_days=740, n_pairs=2)
    first = _run(prices)
    change_at = 500 + 60  # halfway through the first trading window
    changed = prices.copy()
    changed.iloc[change_at:] *= np.exp(np.random.default_rng(1).normal(0, 0.05, (180, 4)))
    second = _run(changed)
    a, b = first[0], second[0]
    assert a.pairs == b.pairs
    assert {k: v.to_dict() for k, v in a.model.spread_parts_.items()} == {
        k: v.to_dict() for k, v in b.model.spread_parts_.items()
    }
    for name in a.model.garch_parts_:
        assert a.model.garch_parts_[name].params_ == b.model.garch_parts_[name].params_
    cut = prices.index[change_at]
    before = positions_table(first)
    after = positions_table(second)
    pd.testing.assert_frame_equal(
        before[before["date"] < cut].reset_index(drop=True),
        after[after["date"] < cut].reset_index(drop=True),
    )
