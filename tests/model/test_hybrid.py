"""The hybrid model: it learns, uses no future data, is deterministic, and rejects bad
input with errors that name the problem."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.data import DataError
from mlflow_pairs.model import (
    OUTPUT_COLUMNS,
    GarchGruModel,
    ModelConfig,
    TrainingConfig,
    classification_metrics,
    reversion_target,
)
from mlflow_pairs.signals import SignalRule
from tests.model.simulate import mean_reverting_pairs

FAST = TrainingConfig(epochs=3, seed=7, hidden_size=8)


def _pairs(n: int) -> list[tuple[str, str]]:
    return [(f"Y{i}", f"X{i}") for i in range(n)]


def _fit(prices: pd.DataFrame, n_pairs: int, training: TrainingConfig) -> GarchGruModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GarchGruModel("energy", _pairs(n_pairs), [], training=training).fit(prices)


def _zscore_rule(
    model: GarchGruModel, prices: pd.DataFrame, threshold: float = 1.0
) -> dict[str, float]:
    """The z-score-only rule on the model's test part: revert when |z| >= threshold."""
    n = len(prices)
    start, horizon = n - int(n * model.config.test_fraction), model.config.horizon
    labels, predicted = [], []
    for part in model.spread_parts_.values():
        z = part.zscore(part.spread(prices)).to_numpy()
        target = reversion_target(z, horizon, model.config.reversion_threshold)
        rows = np.arange(start, n - horizon)
        labels.append(target[rows])
        predicted.append((np.abs(z[rows]) >= threshold).astype(float))
    return classification_metrics(np.concatenate(labels), np.concatenate(predicted))


def test_reversion_target_by_hand() -> None:
    z = np.array([2.0, 1.0, -3.0, 0.5, 0.4, 1.0])
    assert reversion_target(z, 2, 0.0)[:4].tolist() == [0.0, 1.0, 1.0, 0.0]
    assert np.isnan(reversion_target(z, 2, 0.0)[-2:]).all()
    assert reversion_target(z, 1, 1.5)[:3].tolist() == [0.0, 0.0, 1.0]


def test_learns_a_mean_reverting_spread_with_garch_noise() -> None:
    prices = mean_reverting_pairs(3, n_days=2000, n_pairs=3)
    model = _fit(
        prices,
        3,
        TrainingConfig(
            epochs=40, seed=1, learning_rate=3e-3, early_stopping_patience=8, batch_size=128
        ),
    )
    metrics = model.metrics_
    majority_accuracy = max(model.base_rate_, 1 - model.base_rate_)
    assert metrics["auc"] > 0.65  # a majority-class guess has AUC 0.5
    assert metrics["accuracy"] > majority_accuracy + 0.1
    assert metrics["f1"] > 0.6
    rule = _zscore_rule(model, prices)
    assert metrics["auc"] >= rule["auc"]
    assert metrics["f1"] >= rule["f1"]


def test_beats_the_zscore_rule_when_reversion_speed_follows_volatility() -> None:
    prices = mean_reverting_pairs(1, n_days=2500, n_pairs=6, regime_dependent=True)
    model = _fit(
        prices,
        6,
        TrainingConfig(
            epochs=80,
            seed=1,
            learning_rate=3e-3,
            early_stopping_patience=10,
            batch_size=128,
            hidden_size=16,
        ),
    )
    rule = _zscore_rule(model, prices)
    assert model.metrics_["auc"] >= rule["auc"] + 0.05, (model.metrics_, rule)
    assert model.metrics_["f1"] >= rule["f1"] + 0.05, (model.metrics_, rule)


@pytest.fixture(scope="module")
def small_model() -> tuple[GarchGruModel, pd.DataFrame]:
    prices = mean_reverting_pairs(5, n_days=900, n_pairs=2)
    return _fit(prices, 2, FAST), prices


def test_same_seed_same_model(small_model: tuple[GarchGruModel, pd.DataFrame]) -> None:
    model, prices = small_model
    again = _fit(prices, 2, FAST)
    request = prices.iloc[-200:]
    pd.testing.assert_frame_equal(
        model.predict(request, all_dates=True), again.predict(request, all_dates=True)
    )
    for a, b in zip(
        model.sequence_.network_.state_dict().values(),
        again.sequence_.network_.state_dict().values(),
        strict=True,
    ):
        assert np.array_equal(a.numpy(), b.numpy())


def test_output_contract(small_model: tuple[GarchGruModel, pd.DataFrame]) -> None:
    model, prices = small_model
    latest = model.predict(prices.iloc[-150:])
    assert list(latest.columns) == list(OUTPUT_COLUMNS)
    assert list(latest["pair"]) == ["Y0/X0", "Y1/X1"]
    assert (latest["date"] == prices.index[-1]).all()
    assert set(latest["signal"]) <= {-1, 0, 1}
    full = model.predict(prices.iloc[-150:], all_dates=True)
    assert len(full) == 2 * 150
    part = model.spread_parts_["Y0/X0"]
    expected = np.log(prices["Y0"]) - part.hedge_ratio * np.log(prices["X0"]) - part.intercept
    np.testing.assert_allclose(full["spread"].iloc[:150], expected.iloc[-150:], rtol=1e-12)
    traded = full[full["signal"] != 0]
    np.testing.assert_allclose(
        traded["weight_x"], -traded["weight_y"] * traded["hedge_ratio"], rtol=1e-12
    )


def test_latest_date_alone_equals_the_last_row_of_all_dates(
    small_model: tuple[GarchGruModel, pd.DataFrame],
) -> None:
    """The latest-date path starts the signal path after the last day that forces a flat
    position and runs the GRU on fewer windows: it must give exactly the full path's row."""
    model, prices = small_model
    rules = [
        SignalRule(),
        SignalRule(min_probability=0.0),
        SignalRule(entry_z=1.2, exit_z=0.1, stop_z=3.0, max_holding=60, min_probability=0.0),
        SignalRule(entry_z=1.5, exit_z=0.4, stop_z=2.5, max_holding=5, min_probability=0.3),
    ]
    in_position = 0
    for rule in rules:
        for end in range(len(prices) - 60, len(prices) + 1, 3):
            request = prices.iloc[end - 150 : end]
            latest = model.predict(request, rule=rule)
            full = model.predict(request, rule=rule, all_dates=True)
            last = full[full["date"] == request.index[-1]].reset_index(drop=True)
            pd.testing.assert_frame_equal(latest, last, check_exact=False, rtol=1e-6, atol=1e-7)
            assert latest["signal"].tolist() == last["signal"].tolist()
            in_position += int((latest["signal"] != 0).sum())
    assert in_position >= 3  # the comparison covered open positions, not only flat days


def test_changing_future_prices_leaves_past_outputs_unchanged(
    small_model: tuple[GarchGruModel, pd.DataFrame],
) -> None:
    model, prices = small_model
    request = prices.iloc[-200:].copy()
    before = model.predict(request, all_dates=True, rule=SignalRule(min_probability=0.0))
    changed = request.copy()
    changed.iloc[150:] *= np.exp(np.random.default_rng(0).normal(0, 0.05, (50, 4)))
    after = model.predict(changed, all_dates=True, rule=SignalRule(min_probability=0.0))
    cut = before["date"] < request.index[150]
    pd.testing.assert_frame_equal(before[cut], after[cut])
    assert not before[~cut]["spread"].equals(after[~cut]["spread"])


def test_fitted_parts_use_only_the_training_dates() -> None:
    prices = mean_reverting_pairs(5, n_days=900, n_pairs=2)
    model = _fit(prices, 2, FAST)
    changed = prices.copy()
    n_train = len(prices) - int(len(prices) * 0.2) * 2
    changed.iloc[n_train:] *= 1.3  # everything after the training part
    other = _fit(changed, 2, FAST)
    assert model.spread_parts_ == other.spread_parts_
    assert model.garch_parts_["Y0/X0"].params_ == other.garch_parts_["Y0/X0"].params_
    np.testing.assert_array_equal(model.scaler_.mean, other.scaler_.mean)


def test_native_save_and_load_round_trip(
    small_model: tuple[GarchGruModel, pd.DataFrame], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    model, prices = small_model
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["gru.pt", "model.json"]
    loaded = GarchGruModel.load(tmp_path / "m")
    request = prices.iloc[-120:]
    pd.testing.assert_frame_equal(
        model.predict(request, all_dates=True), loaded.predict(request, all_dates=True)
    )


@pytest.mark.parametrize(
    ("mutate", "rule", "named"),
    [
        (lambda p: p.drop(columns=["X1"]), "unknown-symbols", "missing symbol(s) X1"),
        (lambda p: p.iloc[-15:], "too-few-observations", "needs at least 21"),
        (
            lambda p: p.assign(Y0=p["Y0"].where(p.index != p.index[-5])),
            "missing",
            "missing price for Y0 on",
        ),
        (lambda p: p.iloc[::-1], "unsorted-dates", "not in increasing order"),
        (lambda p: pd.concat([p, p.iloc[[-1]]]), "duplicate-dates", "duplicate date"),
    ],
    ids=["missing-symbol", "short-history", "nan", "unsorted", "duplicate"],
)
def test_bad_input_is_named(small_model, mutate, rule, named) -> None:  # type: ignore[no-untyped-def]
    model, prices = small_model
    with pytest.raises(DataError) as info:
        model.predict(mutate(prices.iloc[-150:]))
    assert info.value.rule == rule
    assert named in str(info.value)


def test_too_short_training_data_is_a_clear_error() -> None:
    prices = mean_reverting_pairs(5, n_days=200, n_pairs=1)
    with pytest.raises(DataError, match="leave 120 for training"):
        GarchGruModel("energy", _pairs(1), [], training=FAST, config=ModelConfig()).fit(prices)
