"""The walk-forward against planted truth: what each variant earns where the truth is known.

Every run is the product's :func:`run_walk_forward` with the default screening (FDR at
5%), signal rule and costs unless a test says otherwise, on formation windows of 756 days
rolled by 126. The GRU gets a small, fast training configuration; its quality matters only
to ``garch_gru`` and to the out-of-sample AUC in the regime worlds. The numbers quoted in
comments were measured with exactly these settings, on the seed each test uses and on the
others named (the data are deterministic per seed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from mlflow_pairs.backtest import CostModel
from mlflow_pairs.backtest.results import model_lift
from mlflow_pairs.backtest.uncertainty import sharpe_interval
from mlflow_pairs.backtest.walkforward import (
    WindowResult,
    run_walk_forward,
    variant_returns,
    windows,
)
from mlflow_pairs.model import GarchGruModel, ModelConfig, TrainingConfig
from mlflow_pairs.model.signals import SignalRule
from mlflow_pairs.screening import ScreeningCriteria
from tests.synthetic import SyntheticUniverse, planted_universe, random_walks, textbook_rule_returns

FORMATION_DAYS, TRADING_DAYS = 756, 126

#: The textbook rule has neither a stop nor a holding limit, nor a borrow fee: the product
#: with those switched off is the like-for-like comparison. (The model's first-passage
#: label keeps its own stop and limit: with none, every candidate day reverts, one class
#: cannot be fitted, and a window whose model fails is flat for every variant.)
NO_STOP_RULE = SignalRule(stop_z=math.inf, max_holding=10**9)
NO_BORROW_COSTS = CostModel(borrow_bps=0.0)

PLANTED_SEED = 0  # 3 planted pairs (half-lives 3-10 days) among 12 random walks, 1500 days
REGIME_SEED = 0
TWO_CAUSES_SEEDS = range(4)
RANDOM_SEEDS = range(30)  # 15 random walks of 1500 days each: 180 windows of 105 pairs

#: Spreads that revert in calm spells and wander in storms; every planted pair switches.
#: Calm: an AR(1) with a 2-5 day half-life. Storms (10% of the days, spells of 15 days on
#: average): four times the shocks and a 60-day half-life. Twelve years (18 windows), so
#: that a difference of Sharpe ratios rests on more than a few storms. The x legs move
#: more, and the spreads less, than in the default universe: a biased hedge ratio leaks
#: x's random walk into the traded spread, which blurs the planted regimes (chosen when
#: the screening traded the regression with the weaker evidence, biased by about
#: var(spread) / var(log x); it now trades the stronger, docs/screening.md).
REGIME_UNIVERSE: dict[str, Any] = {
    "n_days": FORMATION_DAYS + 18 * TRADING_DAYS,
    "n_planted": 10,
    "regime_dependent": 10,
    "n_random": 2,
    "daily_vol": 0.02,
    "spread_std": 0.01,
    "half_life": (2.0, 5.0),
    "storm_share": 0.1,
    "storm_length": 15.0,
    "storm_vol": 4.0,
    "storm_half_life": 60.0,
}

#: Where a wide spread has two causes: the storm world with longer, milder storms (60 days
#: on average, twice the shocks) and, on calm days, jumps of six calm standard deviations
#: (2% of the days) that revert at the calm half-life. |z| cannot tell a jump that comes
#: back within days from a storm that does not; the path before the day can. A logistic of
#: the label on |z| and the TRUE storm flag, fitted per window on the whole formation
#: window of the true pairs, gains 0.12-0.18 AUC over |z| alone here (seeds 0-3), against
#: 0.04-0.09 in the storm world.
TWO_CAUSES_UNIVERSE: dict[str, Any] = {
    **REGIME_UNIVERSE,
    "storm_length": 60.0,
    "storm_vol": 2.0,
    "calm_jumps": 0.02,
    "jump_size": 6.0,
}

#: A few seconds a window. The model's target is its default: the exit band 0.5 before the
#: stop 4 within 20 days, the default rule's numbers. A 5-day window learned no worse than
#: the default 20 in trials, and faster.
FAST_TRAINING = TrainingConfig(
    epochs=15, hidden_size=16, learning_rate=3e-3, early_stopping_patience=15, device="cpu"
)
FAST_CONFIG = ModelConfig(window=5)


def model_factory(
    training: TrainingConfig = FAST_TRAINING,
) -> Callable[[Sequence[tuple[str, str]]], GarchGruModel]:
    def make(pairs: Sequence[tuple[str, str]]) -> GarchGruModel:
        return GarchGruModel("synthetic", pairs, [], training=training, config=FAST_CONFIG)

    return make


def walk_forward(
    prices: pd.DataFrame,
    *,
    rule: SignalRule | None = None,
    costs: CostModel | None = None,
    training: TrainingConfig = FAST_TRAINING,
) -> list[WindowResult]:
    with warnings.catch_warnings():
        # GARCH convergence warnings on some synthetic spreads; not what is tested here.
        warnings.simplefilter("ignore")
        return run_walk_forward(
            prices,
            sectors=None,
            criteria=ScreeningCriteria(),
            make_model=model_factory(training),
            rule=rule or SignalRule(),
            costs=costs or CostModel(),
            formation_days=FORMATION_DAYS,
            trading_days=TRADING_DAYS,
        )


def sharpe(returns: pd.Series) -> float:
    return sharpe_interval(returns)[0]


@dataclass(frozen=True)
class Run:
    universe: SyntheticUniverse
    results: list[WindowResult]

    def plan(self) -> list[tuple[slice, slice]]:
        return windows(len(self.universe.prices), FORMATION_DAYS, TRADING_DAYS)


@pytest.fixture(scope="module")
def planted() -> SyntheticUniverse:
    return planted_universe(PLANTED_SEED)


@pytest.fixture(scope="module")
def planted_run(planted: SyntheticUniverse) -> Run:
    return Run(planted, walk_forward(planted.prices))


@pytest.fixture(scope="module")
def like_for_like_run(planted: SyntheticUniverse) -> Run:
    return Run(planted, walk_forward(planted.prices, rule=NO_STOP_RULE, costs=NO_BORROW_COSTS))


@pytest.fixture(scope="module")
def regime_run() -> Run:
    universe = planted_universe(REGIME_SEED, **REGIME_UNIVERSE)
    return Run(universe, walk_forward(universe.prices))


@pytest.fixture(scope="module")
def two_causes_runs() -> list[Run]:
    universes = [planted_universe(seed, **TWO_CAUSES_UNIVERSE) for seed in TWO_CAUSES_SEEDS]
    return [Run(universe, walk_forward(universe.prices)) for universe in universes]


@pytest.fixture(scope="module")
def random_runs() -> list[list[WindowResult]]:
    # Nothing should trade, so the GRU plays no part: one tiny epoch keeps the exploratory
    # model of a flat last window cheap.
    tiny = TrainingConfig(epochs=1, hidden_size=4)
    return [walk_forward(random_walks(s, 15, 1500), training=tiny) for s in RANDOM_SEEDS]


def textbook_on_true_pairs(run: Run) -> pd.Series:
    """The textbook rule on the planted pairs with their true hedge ratios and intercepts,
    window by window."""
    universe = run.universe
    pairs = [(p.y, p.x) for p in universe.planted]
    betas = [p.hedge_ratio for p in universe.planted]
    alphas = [p.intercept for p in universe.planted]
    return pd.concat(
        [
            textbook_rule_returns(universe.prices, pairs, betas, alphas, formation, trading)
            for formation, trading in run.plan()
        ]
    )


# -- planted pairs among random walks ---------------------------------------------------


def test_static_z_earns_on_planted_pairs(planted_run: Run) -> None:
    value, lower, _ = sharpe_interval(variant_returns(planted_run.results, "static_z"))
    # Measured Sharpe ratio (lower bound of the 95% stationary-bootstrap interval) on
    # seeds 0-9: 4.04 (3.15), 3.49 (2.56), 3.52 (2.55), 4.09 (3.24), 3.33 (2.32),
    # 2.89 (1.79), 2.63 (1.77), 3.80 (2.99), 3.35 (2.47), 2.37 (1.41). Seed 0 trades all 6
    # windows (seeds 4 and 7 lose one: every training candidate reverted, the GRU could not
    # be fitted on one class, and the window went flat for all variants).
    assert [w.status for w in planted_run.results] == ["tested"] * 6
    assert value > 2.0
    assert lower > 1.0


def test_static_z_is_the_textbook_rule_on_the_screened_pairs(like_for_like_run: Run) -> None:
    """With the stop and the holding limit off and no borrow fee, static_z is the textbook
    rule traded with the screening's direction, hedge ratio and intercept, day by day: the
    same decisions from the last formation day on (both start flat there), the same
    weights, returns and costs, and the same closing trade on the window's last day."""
    prices = like_for_like_run.universe.prices
    compared = 0
    for window, (formation, trading) in zip(
        like_for_like_run.results, like_for_like_run.plan(), strict=True
    ):
        rows = window.screening.selected.set_index(["y", "x"])
        for name, backtest in window.backtests.get("static_z", {}).items():
            y, x = name.split("/")
            beta, alpha = rows.loc[(y, x), "hedge_ratio"], rows.loc[(y, x), "intercept"]
            textbook = textbook_rule_returns(prices, [(y, x)], [beta], [alpha], formation, trading)
            net = backtest.frame["net"]
            assert net.index.equals(textbook.index)
            assert_allclose(net.to_numpy(), textbook.to_numpy(), rtol=0, atol=1e-12)
            compared += 1
    # Seed 0 trades its 3 planted pairs in each of its 6 windows. Measured on seeds 0-9:
    # every pair-window equal, the largest difference 1e-18.
    assert compared == 18


def test_static_z_is_close_to_the_textbook_rule_on_the_true_pairs(
    planted_run: Run, like_for_like_run: Run
) -> None:
    """The product estimates each pair (direction, hedge ratio, intercept) and may miss one
    in a window; the textbook rule is given the truth."""
    truth = sharpe(textbook_on_true_pairs(like_for_like_run))
    like_for_like = sharpe(variant_returns(like_for_like_run.results, "static_z"))
    default = sharpe(variant_returns(planted_run.results, "static_z"))
    # Measured Sharpe ratios on seeds 0-9, textbook on the true pairs / static_z like for
    # like / static_z with the default stop 4, 20-day limit and 50 bps borrow:
    # 3.96/4.32/4.04, 4.23/3.38/3.49, 3.82/3.71/3.52, 4.28/4.23/4.09, 4.08/3.51/3.33,
    # 3.54/3.13/2.89, 2.89/2.82/2.63, 4.39/3.96/3.80, 3.60/3.55/3.35, 3.02/2.62/2.37.
    # Like for like within 0.85 of the truth (median 0.40 below it), the default within
    # 0.75; the estimated pairs mostly earn less than the true ones.
    assert abs(like_for_like - truth) < 1.0
    assert abs(default - truth) < 1.0


def test_positions_trade_the_selected_rows_with_their_hedge_ratio(
    planted_run: Run, like_for_like_run: Run, regime_run: Run
) -> None:
    for run in (planted_run, like_for_like_run, regime_run):
        for window in run.results:
            selected = window.screening.selected
            assert (selected["qvalue"] <= 0.05).all()
            names = selected["y"] + "/" + selected["x"]
            hedge = dict(zip(names, selected["hedge_ratio"], strict=True))
            if window.status == "flat":
                assert not window.backtests
                continue
            assert window.status == "tested"
            for variant, traded in window.backtests.items():
                assert set(traded) <= set(hedge), variant
                for name, backtest in traded.items():
                    held = backtest.frame[backtest.frame["position"] != 0]
                    implied = -held["weight_x"] / held["weight_y"]
                    assert_allclose(implied.to_numpy(), hedge[name], rtol=0, atol=1e-9)


# -- reversion that depends on the volatility regime --------------------------------------


def test_regime_pairs_pass_screening(regime_run: Run) -> None:
    assert all(window.status == "tested" for window in regime_run.results)
    planted = {frozenset((p.y, p.x)) for p in regime_run.universe.planted}
    traded = [{frozenset(pair) for pair in window.pairs} for window in regime_run.results]
    planted_share_of_traded = np.mean([len(t & planted) / len(t) for t in traded])
    found = np.mean([len(t & planted) / len(planted) for t in traded])
    # Measured on seeds 0-11: every window tested; 98-100% of the traded pairs planted;
    # 68-93% of the planted pairs selected on average (82% on seed 0, at least 7 of 10 in
    # each window; the screening keeps at most 10).
    assert planted_share_of_traded >= 0.95
    assert found >= 0.6


def test_garch_gru_beats_static_z_when_reversion_depends_on_the_regime(
    regime_run: Run,
) -> None:
    results = regime_run.results
    gain = sharpe(variant_returns(results, "garch_gru")) - sharpe(
        variant_returns(results, "static_z")
    )
    # Measured Sharpe ratios, static_z / garch / garch_gru, on seeds 0-11:
    # 1.63/2.11/2.34, 1.14/2.33/2.05, 0.78/1.15/1.26, 0.54/2.02/2.07, 1.42/1.77/1.77,
    # 1.43/3.06/2.82, 1.03/1.41/1.68, 0.84/2.07/1.69, 1.27/1.77/1.54, 1.64/2.33/2.81,
    # 1.91/2.41/2.60, 1.35/2.11/2.18. garch_gru - static_z: 0.71 on seed 0, above 0.3 on
    # 11 of 12 seeds (median 0.77; 0.27 on seed 8). The gain is the GARCH part's (bands
    # that widen in storms and narrow in calm): the GRU filter moves the Sharpe ratio by
    # -0.38..+0.48 against garch (median +0.06).
    assert gain > 0.3


def test_the_gru_does_no_harm_where_the_regime_adds_little_to_z(regime_run: Run) -> None:
    """In the storm world a wide spread mostly means a storm, so |z| already carries most
    of what the regime says: the GRU, shrunk toward the |z| baseline and kept at it unless
    it beats it on validation, ties it instead of losing to it."""
    lift = model_lift(regime_run.results)
    # Measured pooled out-of-sample AUC lift over |z| [95% interval], seeds 0-11, about
    # 2,200-3,300 candidate days each: -0.002 [-0.009, 0.004], +0.008, +0.002, +0.003,
    # -0.001, -0.013 [-0.035, 0.008], +0.010, +0.004, -0.007, +0.017 [0.001, 0.035],
    # -0.009, -0.001: the interval covers 0 on 11 seeds. Before the shrinkage and the kept
    # baseline (an unconstrained correction): -0.031 [-0.065, -0.002] on seed 0, -0.055
    # to +0.018 over the seeds, below 0 on 4. A logistic of the label on |z| and the TRUE
    # storm flag, fitted on each window's training part, gains +0.072, +0.020, +0.017 and
    # +0.009 on seeds 0-3.
    assert lift["auc_lift"] > -0.01
    assert lift["auc_lift_upper"] >= 0  # exactly 0 where every window keeps the baseline


def test_the_two_causes_world_jumps_on_calm_days_only() -> None:
    """The generator's truth: in the two-causes world the spreads' shocks have jumps of six
    calm standard deviations on about 2% of the calm days and none in storms; the storm
    world has none."""
    for world, share in ((REGIME_UNIVERSE, 0.0), (TWO_CAUSES_UNIVERSE, 0.02)):
        universe = planted_universe(REGIME_SEED, **world)
        assert universe.regimes is not None
        jumps, calm_days = 0, 0
        for pair in universe.planted:
            log_y = np.log(universe.prices[pair.y].to_numpy())
            log_x = np.log(universe.prices[pair.x].to_numpy())
            spread = log_y - pair.intercept - pair.hedge_ratio * log_x
            storm = universe.regimes[pair.name].to_numpy()
            calm_phi = 0.5 ** (1 / pair.half_life)
            phi = np.where(storm, 0.5 ** (1 / world["storm_half_life"]), calm_phi)
            calm_scale = world["spread_std"] * np.sqrt(1 - calm_phi**2)
            scale = np.where(storm, world["storm_vol"] * calm_scale, calm_scale)
            shock = (spread[1:] - phi[1:] * spread[:-1]) / scale[1:]
            large = np.abs(shock) > 6  # a jump is 8.5-13 calm shocks' standard deviations
            assert not (large & storm[1:]).any()
            jumps += int(large.sum())
            calm_days += int((~storm[1:]).sum())
        assert jumps / calm_days == pytest.approx(share, abs=0.004)


def test_gru_beats_the_zscore_baseline_where_a_wide_spread_has_two_causes(
    two_causes_runs: list[Run],
) -> None:
    """Calm jumps that revert and storms that wander both make |z| large; the window of
    standardised residuals and GARCH volatility before the day tells them apart. Four
    seeds, so that the margin rests on more than one draw of the world."""
    per_seed = [model_lift(run.results) for run in two_causes_runs]
    pooled = model_lift([window for run in two_causes_runs for window in run.results])
    # Measured pooled out-of-sample AUC lift over |z| [95% interval], seeds 0-11, about
    # 4,000-5,000 candidate days each: +0.044 [0.027, 0.060] (0.722 vs 0.678), +0.028
    # [0.008, 0.050], +0.035 [0.023, 0.049], +0.021 [0.004, 0.038], +0.014 [-0.000, 0.026],
    # +0.098, +0.022, +0.017, +0.046, +0.017 [-0.004, 0.039], +0.036, +0.062: above 0 on
    # every seed, the interval above 0 on 10 of 12. Seeds 0-3 pooled: +0.034 [0.027, 0.041].
    # The previous GRU (an unconstrained correction, inputs as they come): +0.042, +0.039,
    # +0.024 [-0.007, 0.054], +0.021 [-0.011, 0.052] on seeds 0-3 (pooled +0.029 [0.015,
    # 0.042]), -0.061..+0.019 on seeds 4-11; the interval above 0 on 2 of 12.
    # What it does NOT buy (reported, not asserted): Sharpe. Here static_z earns more than
    # both GARCH variants (7.09 / 6.64 / 6.53 on seed 0; static_z ahead of garch_gru by
    # 0.33-1.32 on every seed): the GARCH bands widen after each jump and miss the trade
    # that reverts, and the GRU filter on those bands moves the Sharpe ratio by
    # -0.28..+0.04.
    assert all(lift["auc_lift_lower"] > 0 for lift in per_seed), per_seed
    assert pooled["auc_lift"] > 0.03
    assert pooled["auc_lift_lower"] > 0.02


# -- random walks ------------------------------------------------------------------------


def test_random_walks_stay_flat(random_runs: list[list[WindowResult]]) -> None:
    statuses = [window.status for results in random_runs for window in results]
    # Measured: 179 of 180 windows flat (seed 20's second window selects a pair of random
    # walks and trades it).
    assert len(statuses) == 180
    assert statuses.count("flat") / len(statuses) >= 0.95
    for results in random_runs:
        for window in results:
            if window.status == "flat":
                assert not window.backtests
                assert window.model is None or window.exploratory
