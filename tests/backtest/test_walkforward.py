"""The walk-forward protocol: windows, and no look-ahead across a window's end."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from mlflow_pairs.backtest import CostModel, portfolio_returns
from mlflow_pairs.backtest.metrics import performance
from mlflow_pairs.backtest.results import candidate_metrics, variant_metrics
from mlflow_pairs.backtest.walkforward import (
    VARIANTS,
    positions_table,
    run_walk_forward,
    variant_returns,
    windows,
)
from mlflow_pairs.model import GarchGruModel, TrainingConfig
from mlflow_pairs.model.signals import SignalRule
from mlflow_pairs.screening import ScreeningCriteria
from tests.model.simulate import mean_reverting_pairs
from tests.synthetic import random_walks


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


def _random_walk_run(fallback_top_k: int) -> list:
    """Six random walks in six windows, screened by p-value alone at 20%: some windows
    select a pair by chance ("tested"), the others none (flat, or the fallback's)."""

    def make(pairs):  # type: ignore[no-untyped-def]
        return GarchGruModel("energy", pairs, [], training=TrainingConfig(epochs=1, hidden_size=4))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_walk_forward(
            random_walks(0, 6, 1100),
            sectors=None,
            criteria=replace(ScreeningCriteria(), fdr=None, max_pvalue=0.2),
            make_model=make,
            rule=SignalRule(),
            costs=CostModel(),
            formation_days=500,
            trading_days=100,
            fallback_top_k=fallback_top_k,
        )


def test_fallback_windows_are_flagged_and_left_out_of_the_headline() -> None:
    """The opt-in fallback trades the best untested pair where nothing passed: such a
    window says so (status "fallback"), its returns are reported apart (``fallback_*``),
    and the headline is the run without it, less those windows' days."""
    honest, fallback = _random_walk_run(0), _random_walk_run(1)
    statuses = [w.status for w in fallback]
    # Measured: fallback, tested, fallback, fallback, tested, tested.
    assert {"tested", "fallback"} <= set(statuses)
    assert [w.status for w in honest] == ["flat" if s == "fallback" else s for s in statuses]
    for plain, window in zip(honest, fallback, strict=True):
        if window.status == "tested":
            assert plain.pairs == window.pairs
        else:
            assert not plain.backtests
            assert window.backtests
            assert len(window.pairs) == 1
    left_out = pd.DatetimeIndex(
        np.concatenate([w.trading_dates for w in fallback if w.status == "fallback"])
    )
    metrics, plain_metrics = variant_metrics(fallback), variant_metrics(honest)
    traded = 0.0
    for variant in VARIANTS:
        headline = variant_returns(fallback, variant)
        expected = variant_returns(honest, variant)
        pd.testing.assert_series_equal(headline, expected.drop(left_out))
        alone = variant_returns(fallback, variant, statuses=("fallback",))
        assert alone.index.equals(left_out.sort_values())
        traded += float(alone.abs().sum())
        assert metrics[variant]["fallback_sharpe"] == performance(alone)["sharpe"]
        assert metrics[variant]["sharpe"] == performance(headline)["sharpe"]
        assert not any(k.startswith("fallback_") for k in plain_metrics[variant])
    assert traded > 0  # the fallback windows did trade


def test_the_candidate_is_scored_on_its_own_trading_window_only() -> None:
    """Promotion scores the registered model (the latest window's) on the days after its
    training end: its trading window, not the whole walk-forward."""
    results = _run(mean_reverting_pairs(9, n_days=860, n_pairs=2))
    latest = results[-1]
    assert len(results) == 3
    assert latest.model is not None
    assert latest.classification is not None
    assert latest.trading_dates[0] > pd.Timestamp(latest.model.data_end_)
    found = candidate_metrics(latest)
    own = portfolio_returns(latest.backtests["garch_gru"]).reindex(
        latest.trading_dates, fill_value=0.0
    )
    assert found["sharpe"] == performance(own)["sharpe"]
    assert found["max_drawdown"] == performance(own)["max_drawdown"]
    whole = variant_returns(results, "garch_gru")
    assert len(whole) > len(own)
    assert found["sharpe"] != performance(whole)["sharpe"]
    frame = latest.classification
    labels = frame["label"].to_numpy().astype(int)
    # sklearn as the oracle of both F1 scores.
    assert found["f1"] == pytest.approx(f1_score(labels, frame["gru"].to_numpy() >= 0.5))
    assert found["f1_constant"] == pytest.approx(f1_score(labels, np.ones_like(labels)))
    assert found["oos_samples"] == len(frame)
