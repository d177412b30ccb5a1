"""The hybrid model: it learns, uses no future data, is deterministic, and rejects bad
input with errors that name the problem."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.data import DataError
from mlflow_pairs.features.core import SpreadReturn, SpreadVolatility, SpreadZScore
from mlflow_pairs.model import (
    OUTPUT_COLUMNS,
    GarchGruModel,
    ModelConfig,
    TrainingConfig,
    first_passage_target,
)
from mlflow_pairs.model.signals import SignalRule
from tests.model.simulate import mean_reverting_pairs

FAST = TrainingConfig(epochs=3, seed=7, hidden_size=8)


def _pairs(n: int) -> list[tuple[str, str]]:
    return [(f"Y{i}", f"X{i}") for i in range(n)]


def _fit(prices: pd.DataFrame, n_pairs: int, training: TrainingConfig) -> GarchGruModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GarchGruModel("energy", _pairs(n_pairs), [], training=training).fit(prices)


def test_first_passage_target_by_hand() -> None:
    z = np.array([2.0, 1.5, 0.4, -2.5, -3.0, -4.2, 1.2, 1.1, 1.0, 0.9])
    target = first_passage_target(z, horizon=3, exit_z=0.5, stop_z=4.0, min_abs_z=1.0)
    # t0: 1.5, then 0.4 <= 0.5 -> reaches the exit band first (1). t1: 0.4 next -> 1.
    # t2: |z| < 1, no candidate. t3 (short side -1): -3.0, -4.2 -> stop first (0).
    # t4: -4.2 next -> stop (0). t5: beyond the stop, no candidate.
    # t6: 1.1, 1.0, 0.9 -> neither within 3 days: time limit (0).
    # t7: 1.0, 0.9, then the data ends before 3 days: unknown (NaN); t8, t9 likewise.
    expected = [1.0, 1.0, np.nan, 0.0, 0.0, np.nan, 0.0, np.nan, np.nan, np.nan]
    np.testing.assert_array_equal(target, expected)
    # The side matters: a negative z exits upwards.
    assert first_passage_target(np.array([-2.0, -0.3]), 1, 0.5, 4.0, 1.0)[0] == 1.0
    assert first_passage_target(np.array([-2.0, 0.3]), 1, 0.5, 4.0, 1.0)[0] == 1.0
    # Unknown (NaN) prices stop the path: no label.
    assert np.isnan(first_passage_target(np.array([2.0, np.nan, 0.0]), 2, 0.5, 4.0, 1.0)[0])


def test_learns_a_mean_reverting_spread_with_garch_noise() -> None:
    """Plain AR(1) reversion: |z| says what there is to say. The GRU learns it (better
    than a coin and than the constant predictor's Brier score) but, measured here, does
    not clearly beat the |z| baseline it starts from: AUC 0.700 vs 0.672 on this seed; on
    seeds 1-3 0.663 vs 0.666, 0.562 vs 0.651 (a correction learnt from noise) and 0.689
    vs 0.689 (no epoch beat the baseline on validation: it is kept). The regime test
    below is where it earns its place."""
    prices = mean_reverting_pairs(4, n_days=2000, n_pairs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GarchGruModel(
            "energy",
            _pairs(3),
            [],
            training=TrainingConfig(
                epochs=40, seed=1, learning_rate=3e-3, early_stopping_patience=8, batch_size=128
            ),
            config=ModelConfig(horizon=5),  # a balanced label: about 44% reach the band
        ).fit(prices)
    metrics = model.metrics_
    constant_brier = model.base_rate_ * (1 - model.base_rate_)
    assert metrics["auc"] > 0.6, metrics
    assert metrics["zscore_auc"] > 0.6, metrics
    assert metrics["brier"] < constant_brier, (metrics, constant_brier)
    assert abs(metrics["auc"] - metrics["zscore_auc"]) < 0.1, metrics
    # Always predicting reversion: recall 1 and precision the test part's prevalence p,
    # so F1 = 2p / (1 + p), with p counted here from the labels of the test part's days
    # (those whose horizon ends inside the data).
    frame = model.predict(prices, all_dates=True)
    first = pd.Timestamp(model.split_["test"][0])
    last = prices.index[len(prices) - model.config.horizon - 1]
    labels = []
    for _, rows in frame.groupby("pair"):
        target = model.target(rows["zscore"].to_numpy())
        dates = pd.DatetimeIndex(rows["date"])
        labels.append(target[(dates >= first) & (dates <= last) & np.isfinite(target)])
    p = float(np.concatenate(labels).mean())
    assert len(np.concatenate(labels)) == model.sample_counts_["test"]
    assert metrics["f1_constant"] == pytest.approx(2 * p / (1 + p), rel=1e-12)


def test_beats_the_zscore_baseline_when_reversion_speed_follows_volatility() -> None:
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
    metrics = model.metrics_
    # Measured: AUC 0.932 vs 0.369, Brier 0.105 vs 0.166 (seeds 2, 3: 0.905 vs 0.498,
    # 0.814 vs 0.574).
    assert metrics["auc"] >= metrics["zscore_auc"] + 0.05, metrics
    assert metrics["brier"] <= metrics["zscore_brier"] - 0.01, metrics


@pytest.fixture(scope="module")
def small_model() -> tuple[GarchGruModel, pd.DataFrame]:
    """A model fitted on the first 800 of 1000 days (it trades only after them)."""
    prices = mean_reverting_pairs(5, n_days=1000, n_pairs=2)
    return _fit(prices.iloc[:FITTED], 2, FAST), prices


FITTED = 800


@pytest.mark.parametrize("end", [FITTED + 1, FITTED + 37, 1000])
def test_latest_row_is_the_same_for_every_request_length(
    small_model: tuple[GarchGruModel, pd.DataFrame], end: int
) -> None:
    """From the documented minimum (min_history dates before the first new day) upward,
    the latest row does not depend on where the request starts, and it equals the
    walk-forward's path (the longest request, all dates)."""
    model, prices = small_model
    rule = SignalRule(entry_z=1.0, exit_z=0.2, stop_z=3.5, min_probability=0.0)
    earliest = FITTED - model.min_history
    path = model.predict(prices.iloc[earliest - 40 : end], rule=rule, all_dates=True)
    expected = path[path["date"] == prices.index[end - 1]].reset_index(drop=True)
    for start in range(earliest - 40, earliest + 1, 4):
        latest = model.predict(prices.iloc[start:end], rule=rule)
        # The GRU runs in float32 on batches of different sizes: 1e-7 apart at most.
        pd.testing.assert_frame_equal(latest, expected, check_exact=False, rtol=1e-6, atol=1e-7)
        assert latest["signal"].tolist() == expected["signal"].tolist()
    # Before its data ends the model holds no position.
    inside = path[path["date"] < prices.index[FITTED - 1]]
    assert (inside["signal"] == 0).all()
    traded = path[path["date"] >= prices.index[FITTED - 1]]
    assert end < FITTED + 30 or (traded["signal"] != 0).any()


def test_a_request_from_the_first_new_day_continues_arch_exactly(
    small_model: tuple[GarchGruModel, pd.DataFrame],
) -> None:
    """Served volatility from the first day after the fitted data equals arch's filter
    over the whole history with the fitted parameters (that day's innovation counted)."""
    from arch import arch_model

    model, prices = small_model
    request = prices.iloc[FITTED : FITTED + 60]
    served = model.predict(request, all_dates=True)
    for name, part in model.spread_parts_.items():
        garch = model.garch_parts_[name]
        history = prices.iloc[: FITTED + 60]
        changes = part.spread(history).diff().dropna().to_numpy() * garch.scale_
        arch = arch_model(changes, mean="Constant", vol="GARCH", p=1, q=1, rescale=False)
        fixed = arch.fix([garch.params_[k] for k in ("mu", "omega", "alpha[1]", "beta[1]")])
        # arch's sigma_t is known at t-1: the model's one-day-ahead forecast on day t-1.
        expected = np.asarray(fixed.conditional_volatility)[-59:] / garch.scale_
        got = served[served["pair"] == name]["garch_sigma"].to_numpy()[:-1]
        np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_same_seed_same_model(small_model: tuple[GarchGruModel, pd.DataFrame]) -> None:
    model, prices = small_model
    again = _fit(prices.iloc[:FITTED], 2, FAST)
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


def test_fitted_parts_use_only_their_dates() -> None:
    """The hedge comes from the screening (given here); GARCH is fitted on the training
    part only: changing every later price leaves its parameters unchanged. The spread's
    z-score statistics come from the whole formation window by design."""
    prices = mean_reverting_pairs(5, n_days=900, n_pairs=2)
    hedges = {"Y0/X0": (1.2, 0.5), "Y1/X1": (1.2, 0.5)}
    n_train = len(prices) - int(len(prices) * 0.2) * 2
    changed = prices.copy()
    changed.iloc[n_train:] *= 1.3  # everything after the training part
    fitted = []
    for data in (prices, changed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = GarchGruModel("energy", _pairs(2), [], training=FAST)
            fitted.append(model.fit(data, hedges=hedges))
    a, b = fitted
    for name in ("Y0/X0", "Y1/X1"):
        assert a.spread_parts_[name].hedge_ratio == 1.2
        assert a.garch_parts_[name].params_ == b.garch_parts_[name].params_
    assert a.spread_parts_["Y0/X0"].mean != b.spread_parts_["Y0/X0"].mean


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


def test_the_untrained_gru_is_the_zscore_baseline(
    small_model: tuple[GarchGruModel, pd.DataFrame],
) -> None:
    """The GRU learns a correction to the |z| baseline's logit: before any epoch (its head
    starts at zero) it predicts exactly the baseline, out of sample too."""
    _, prices = small_model
    untrained = _fit(prices.iloc[:FITTED], 2, TrainingConfig(epochs=0, seed=7, hidden_size=8))
    frame = untrained.classification_frame(untrained.predict(prices.iloc[-150:], all_dates=True))
    assert len(frame) > 20
    np.testing.assert_allclose(frame["gru"], frame["zscore"], rtol=1e-5)


def test_a_model_saved_before_the_prior_loads_as_a_zero_prior(
    small_model: tuple[GarchGruModel, pd.DataFrame], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Model format 2 (a GRU that learned the whole logit, no prior buffers) still loads,
    and predicts what its network alone does."""
    import json

    import torch

    model, prices = small_model
    model.save(tmp_path / "m")
    request = prices.iloc[-120:]
    expected = GarchGruModel.load(tmp_path / "m")
    expected.sequence_.network_.prior.zero_()
    document = json.loads((tmp_path / "m" / "model.json").read_text("utf-8"))
    document["format_version"] = 2
    (tmp_path / "m" / "model.json").write_text(json.dumps(document), "utf-8")
    state = torch.load(tmp_path / "m" / "gru.pt", weights_only=True)
    del state["prior"], state["prior_feature"]
    torch.save(state, tmp_path / "m" / "gru.pt")
    old = GarchGruModel.load(tmp_path / "m").predict(request, all_dates=True)
    pd.testing.assert_frame_equal(expected.predict(request, all_dates=True), old)
    current = model.predict(request, all_dates=True)["reversion_probability"]
    assert not np.allclose(current.dropna(), old["reversion_probability"].dropna())


def test_a_spread_and_its_mirror_image_look_the_same_to_the_gru(
    small_model: tuple[GarchGruModel, pd.DataFrame],
) -> None:
    """The first-passage label does not care which side a spread is on, and neither do the
    GRU's inputs: the signed ones (the z-score, the standardised residual and the features'
    ``signed`` columns) are oriented by the sign of the window's last z-score, so a window
    and its mirror image are equal."""
    _, prices = small_model
    features = [SpreadZScore(), SpreadReturn(), SpreadVolatility()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GarchGruModel("energy", _pairs(2), features, training=FAST)
        model.fit(prices.iloc[:FITTED])
    signed = ["zscore", "std_resid", "spread_zscore", "spread_return"]  # flip with the spread
    assert model.oriented_columns_ == signed
    inputs = model._inputs(prices.index, prices[model.symbols].to_numpy(dtype=float))
    rows = inputs["rows"][0]
    mirror = rows.copy()
    mirror[:, [model.feature_names.index(c) for c in signed]] *= -1
    windows, ends = model._windows(rows)
    mirrored, mirrored_ends = model._windows(mirror)
    assert len(ends) > 900
    np.testing.assert_array_equal(ends, mirrored_ends)
    np.testing.assert_array_equal(windows, mirrored)
    wanted = np.array([100, 500, 999])
    np.testing.assert_array_equal(model._windows(rows, wanted)[0], windows[np.isin(ends, wanted)])
    # By hand, a window ending below the mean: its signed columns flipped, the others
    # (|z|, the volatilities) as they come, then scaled.
    k = int(np.nonzero(rows[ends, 0] < 0)[0][0])
    flip = np.ones(rows.shape[1])
    flip[[model.feature_names.index(c) for c in signed]] = -1
    by_hand = model.scaler_.transform(rows[ends[k] - model.config.window + 1 : ends[k] + 1] * flip)
    np.testing.assert_allclose(windows[k], by_hand, rtol=1e-6)


def test_a_signed_column_a_feature_does_not_have_is_an_error() -> None:
    class Misdeclared(SpreadReturn):
        name = "misdeclared"
        signed = ("spread_change",)

    with pytest.raises(ValueError, match=r"'misdeclared' declares signed column.*spread_change"):
        GarchGruModel("energy", _pairs(1), [Misdeclared()])


def test_a_model_saved_before_the_orientation_loads_without_it(
    small_model: tuple[GarchGruModel, pd.DataFrame], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Model format 3 (a GRU that learned its signed inputs as they come) still loads, and
    its GRU still sees them unoriented."""
    import json

    import torch

    model, prices = small_model
    model.save(tmp_path / "m")
    # A head that listens to the GRU (a short training may have kept the prior).
    state = torch.load(tmp_path / "m" / "gru.pt", weights_only=True)
    state["head.weight"] = torch.ones_like(state["head.weight"])
    torch.save(state, tmp_path / "m" / "gru.pt")
    request = prices.iloc[-120:]
    expected = GarchGruModel.load(tmp_path / "m")
    assert expected.oriented_columns_
    current = expected.predict(request, all_dates=True)["reversion_probability"]
    expected.oriented_columns_ = []
    document = json.loads((tmp_path / "m" / "model.json").read_text("utf-8"))
    document["format_version"] = 3
    del document["oriented_columns"]
    (tmp_path / "m" / "model.json").write_text(json.dumps(document), "utf-8")
    old = GarchGruModel.load(tmp_path / "m")
    assert old.oriented_columns_ == []
    predicted = old.predict(request, all_dates=True)
    pd.testing.assert_frame_equal(expected.predict(request, all_dates=True), predicted)
    assert not np.allclose(current.dropna(), predicted["reversion_probability"].dropna())


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


def test_one_outcome_in_training_is_learnt_not_an_error() -> None:
    """A spread that reverts within days: every candidate day reaches the exit band, so
    the training labels hold one class. The model still fits (the GRU and the baseline
    predict that class) so the window's pairs trade; it used to raise and leave every
    variant flat, the baselines included."""
    rng = np.random.default_rng(2)
    index = pd.bdate_range("2015-01-01", periods=900)
    columns = {}
    for i in range(2):
        x = 3.5 + np.cumsum(rng.normal(0, 0.01, 900))
        cycle = 0.02 * np.sin(np.arange(900) * 2 * np.pi / 6 + i)  # reverts within 3 days
        columns[f"X{i}"] = np.exp(x)
        columns[f"Y{i}"] = np.exp(0.5 + 1.2 * x + cycle + rng.normal(0, 0.002, 900))
    prices = pd.DataFrame(columns, index=index)
    model = _fit(prices.iloc[:800], 2, FAST)
    assert model.base_rate_ == 1.0
    out = model.predict(prices.iloc[-150:], SignalRule(entry_z=1.0), all_dates=True)
    assert np.isfinite(out["reversion_probability"].iloc[-100:]).all()
    assert model.baseline_.predict_proba(np.array([1.5]))[0] > 0.9


def test_a_plugin_feature_of_the_wrong_shape_is_named(
    small_model: tuple[GarchGruModel, pd.DataFrame],
) -> None:
    from mlflow_pairs.features import Feature, PairFrame

    class Short(Feature):
        name = "short_feature"
        columns = ("short_feature",)

        def compute(self, pair: PairFrame) -> pd.DataFrame:
            return pd.DataFrame({"short_feature": pair.spread.iloc[:-3]})

    model, prices = small_model
    broken = GarchGruModel("energy", _pairs(2), [Short()], training=FAST)
    broken.__dict__.update({k: v for k, v in vars(model).items() if k.endswith("_")})
    with pytest.raises(
        ValueError, match="feature 'short_feature' returned 'short_feature' of shape"
    ):
        broken.predict(prices.iloc[-150:])
