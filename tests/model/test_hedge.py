"""The hedge parts: the Kalman hedge equals statsmodels' Kalman filter, continues its
stored state exactly, never looks ahead, and tracks a drifting hedge ratio."""

from __future__ import annotations

import json
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from statsmodels.tsa.statespace.kalman_filter import KalmanFilter

from mlflow_pairs.model.hedge import HedgeSpec, KalmanHedge, StaticHedge
from mlflow_pairs.model.parts import HedgePart

N_DAYS, FITTED = 500, 300


def simulated_pair(seed: int, n: int = N_DAYS) -> dict[str, np.ndarray]:
    """Log prices around 3.5 with a constant hedge ratio 1.2 and an AR(1) spread."""
    rng = np.random.default_rng(seed)
    log_x = 3.5 + np.cumsum(rng.normal(0, 0.01, n))
    spread = np.zeros(n)
    for t in range(1, n):
        spread[t] = 0.9 * spread[t - 1] + rng.normal(0, 0.005)
    return {
        "dates": pd.bdate_range("2018-01-02", periods=n).to_numpy(),
        "log_y": 0.5 + 1.2 * log_x + spread,
        "log_x": log_x,
    }


class Coefficients(TypedDict):
    hedge_ratio: float
    intercept: float


def screening(data: dict[str, np.ndarray], stop: int) -> Coefficients:
    """The screening regression: OLS of log y on a constant and log x over ``:stop``."""
    log_y, log_x = data["log_y"][:stop], data["log_x"][:stop]
    seen = np.isfinite(log_y) & np.isfinite(log_x)
    slope, intercept = np.polyfit(log_x[seen], log_y[seen], 1)
    return {"hedge_ratio": float(slope), "intercept": float(intercept)}


def window(data: dict[str, np.ndarray], start: int, stop: int) -> tuple[np.ndarray, ...]:
    return data["dates"][start:stop], data["log_y"][start:stop], data["log_x"][start:stop]


def fitted_kalman(data: dict[str, np.ndarray], spec: HedgeSpec | None = None) -> KalmanHedge:
    part = KalmanHedge(spec or HedgeSpec(part="kalman"))
    return part.fit(*window(data, 0, FITTED), **screening(data, FITTED))


def statsmodels_filter(part: KalmanHedge, log_y: np.ndarray, log_x: np.ndarray) -> Any:
    """statsmodels' filter of the same state-space model, from the part's prior.

    statsmodels' model is ``y_t = Z_t s_t + e_t``, ``s_{t+1} = T s_t + R eta_t``; here
    ``Z_t = [log x_t, 1]`` (time-varying), ``T = R = I``, ``Var(eta) = Q``,
    ``Var(e) = obs_var_``. ``initialize_known(a0, P0)`` sets the *prediction* for the
    first observation, so ``predicted_state[:, t]`` (shape (2, n + 1)) is
    ``s_{t|t-1}``, the state for observation t given observations 0..t-1, with column 0
    equal to ``a0``; ``filtered_state[:, t]`` is ``s_{t|t}``. A NaN observation is
    skipped (prediction only); its design entry is set to 0 to stay finite.
    """
    n = len(log_y)
    design = np.zeros((1, 2, n))
    design[0, 0] = np.where(np.isfinite(log_x), log_x, 0.0)
    design[0, 1] = 1.0
    endog = np.where(np.isfinite(log_x), log_y, np.nan)
    model = KalmanFilter(k_endog=1, k_states=2, k_posdef=2)
    model.bind(endog)
    model["design"] = design
    model["transition"] = np.eye(2)
    model["selection"] = np.eye(2)
    model["state_cov"] = part.state_var * np.eye(2)
    model["obs_cov"] = np.array([[part.obs_var_]])
    model.initialize_known(part.initial_mean_, part.initial_covariance_)
    return model.filter()


@pytest.fixture(scope="module")
def pair() -> dict[str, np.ndarray]:
    return simulated_pair(7)


# -- the oracle: statsmodels' Kalman filter -------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        HedgeSpec(part="kalman"),
        HedgeSpec(part="kalman", kalman_delta=1e-6),
        HedgeSpec(part="kalman", kalman_delta=1e-3, kalman_obs_var=2e-4),
    ],
    ids=["default", "slow", "fast-fixed-R"],
)
def test_kalman_equals_statsmodels(pair: dict[str, np.ndarray], spec: HedgeSpec) -> None:
    part = fitted_kalman(pair, spec)
    oracle = statsmodels_filter(part, pair["log_y"], pair["log_x"])
    # The whole history from the first fitted date, past the fitted ones.
    hedge_ratio, intercept = part.filter(*window(pair, 0, N_DAYS))
    assert_allclose(hedge_ratio, oracle.predicted_state[0, :N_DAYS], rtol=1e-9)
    assert_allclose(intercept, oracle.predicted_state[1, :N_DAYS], rtol=1e-9)
    # The stored state of the fitted dates is statsmodels' s_{t|t} and P_{t|t}.
    assert_allclose(part.state_.mean, oracle.filtered_state[:, :FITTED].T, rtol=1e-9)
    assert_allclose(
        part.state_.covariance,
        np.moveaxis(oracle.filtered_state_cov[:, :, :FITTED], -1, 0),
        rtol=1e-9,
        atol=1e-9 * np.abs(part.state_.covariance).max(),
    )


def test_prior_is_the_screening_regression_with_its_ols_covariance(
    pair: dict[str, np.ndarray],
) -> None:
    coefficients = screening(pair, FITTED)
    part = fitted_kalman(pair)
    _, log_y, log_x = window(pair, 0, FITTED)
    resid = log_y - coefficients["hedge_ratio"] * log_x - coefficients["intercept"]
    assert part.obs_var_ == pytest.approx(resid @ resid / (FITTED - 2), rel=1e-12)
    design = np.column_stack([log_x, np.ones(FITTED)])
    assert_allclose(
        part.initial_covariance_, part.obs_var_ * np.linalg.inv(design.T @ design), rtol=1e-9
    )
    hedge_ratio, intercept = part.filter(*window(pair, 0, 5))
    assert hedge_ratio[0] == coefficients["hedge_ratio"]  # the first date uses the prior
    assert intercept[0] == coefficients["intercept"]
    assert part.state_var == pytest.approx(1e-4 / (1 - 1e-4), rel=1e-15)


def test_missing_prices_are_skipped_like_statsmodels(pair: dict[str, np.ndarray]) -> None:
    gappy = {key: value.copy() for key, value in pair.items()}
    gappy["log_y"][[40, 41, 350]] = np.nan
    gappy["log_x"][[120, 350, 420]] = np.nan
    part = fitted_kalman(gappy)
    # A NaN in either leg drops the day's update (statsmodels: a missing observation).
    oracle = statsmodels_filter(part, gappy["log_y"], gappy["log_x"])
    hedge_ratio, intercept = part.filter(*window(gappy, 0, N_DAYS))
    assert_allclose(hedge_ratio, oracle.predicted_state[0, :N_DAYS], rtol=1e-9)
    assert_allclose(intercept, oracle.predicted_state[1, :N_DAYS], rtol=1e-9)


# -- continuation of the stored state --------------------------------------------------------


def test_requests_continue_the_stored_state_exactly(pair: dict[str, np.ndarray]) -> None:
    part = fitted_kalman(pair)
    full = np.column_stack(part.filter(*window(pair, 0, N_DAYS)))
    for start in (250, FITTED - 1, FITTED):  # overlapping, last fitted day, the day after
        continued = np.column_stack(part.filter(*window(pair, start, N_DAYS)))
        assert_allclose(continued, full[start:], rtol=1e-12, atol=0)


def test_extend_state_carries_the_state_over_later_dates(pair: dict[str, np.ndarray]) -> None:
    part = fitted_kalman(pair)
    full = np.column_stack(part.filter(*window(pair, 0, N_DAYS)))
    part.extend_state(*window(pair, 0, 400))  # the fitted days are ignored
    assert len(part.state_.dates) == 400
    assert_array_equal(part.state_.dates, pair["dates"][:400])
    for start in (380, 400):
        continued = np.column_stack(part.filter(*window(pair, start, N_DAYS)))
        assert_allclose(continued, full[start:], rtol=1e-12, atol=0)
    part.extend_state(*window(pair, 100, 400))  # nothing new: unchanged
    assert len(part.state_.dates) == 400


def test_output_on_a_date_depends_only_on_earlier_data(pair: dict[str, np.ndarray]) -> None:
    part = fitted_kalman(pair)
    start = 250  # overlapping the fitted dates, and going past them
    base = np.column_stack(part.filter(*window(pair, start, N_DAYS)))
    for t in (260, FITTED, 450):
        changed = {key: value.copy() for key, value in pair.items()}
        changed["log_y"][t:] += 0.3
        changed["log_x"][t:] *= 0.9
        output = np.column_stack(part.filter(*window(changed, start, N_DAYS)))
        k = t - start
        # Data from date t on leaves the output up to and including t unchanged ...
        assert_array_equal(output[: k + 1], base[: k + 1])
        # ... and date t's data first shows on date t + 1.
        assert not np.allclose(output[k + 1], base[k + 1], rtol=1e-6)


# -- what the Kalman hedge is for ----------------------------------------------------------


def test_kalman_tracks_a_drifting_hedge_ratio_better_than_static_ols() -> None:
    rng = np.random.default_rng(11)
    n, fitted = 1500, 500
    # Log prices vary around 0 (prices near 1), so that the hedge ratio and the intercept
    # are separately identifiable; near a large constant log price their random walks are
    # nearly collinear.
    log_x = np.cumsum(rng.normal(0, 0.02, n))
    true_ratio = np.linspace(1.0, 1.5, n)
    data = {
        "dates": pd.bdate_range("2015-01-01", periods=n).to_numpy(),
        "log_y": 0.5 + true_ratio * log_x + rng.normal(0, 0.01, n),
        "log_x": log_x,
    }
    coefficients = screening(data, fitted)
    kalman = KalmanHedge(HedgeSpec(part="kalman")).fit(*window(data, 0, fitted), **coefficients)
    static = StaticHedge().fit(*window(data, 0, fitted), **coefficients)
    truth = true_ratio[fitted:]
    kalman_ratio, _ = kalman.filter(*window(data, fitted, n))
    static_ratio, _ = static.filter(*window(data, fitted, n))
    kalman_rmse = np.sqrt(np.mean((kalman_ratio - truth) ** 2))
    static_rmse = np.sqrt(np.mean((static_ratio - truth) ** 2))
    assert static_rmse > 0.15
    assert kalman_rmse < 0.35 * static_rmse


# -- the static hedge, persistence and arguments ----------------------------------------------


def test_static_hedge_returns_the_given_numbers(pair: dict[str, np.ndarray]) -> None:
    part = StaticHedge().fit(*window(pair, 0, FITTED), hedge_ratio=1.234, intercept=-0.5)
    hedge_ratio, intercept = part.filter(*window(pair, 100, N_DAYS))
    assert hedge_ratio.shape == intercept.shape == (N_DAYS - 100,)
    assert np.all(hedge_ratio == 1.234)
    assert np.all(intercept == -0.5)


@pytest.mark.parametrize("cls", [StaticHedge, KalmanHedge])
def test_parts_implement_the_protocol(cls: type[StaticHedge | KalmanHedge]) -> None:
    assert isinstance(cls(HedgeSpec(part=cls.name)), HedgePart)


@pytest.mark.parametrize("cls", [StaticHedge, KalmanHedge])
def test_round_trip_through_json(
    pair: dict[str, np.ndarray], cls: type[StaticHedge | KalmanHedge]
) -> None:
    part = cls(HedgeSpec(part=cls.name, kalman_delta=3e-4)).fit(
        *window(pair, 0, FITTED), **screening(pair, FITTED)
    )
    if isinstance(part, KalmanHedge):
        part.extend_state(*window(pair, 0, 350))
    document = part.to_dict()
    again = cls.from_dict(json.loads(json.dumps(document)))
    assert again.to_dict() == document
    assert again.spec == part.spec
    for a, b in zip(
        part.filter(*window(pair, 200, N_DAYS)),
        again.filter(*window(pair, 200, N_DAYS)),
        strict=True,
    ):
        assert_array_equal(a, b)
    if isinstance(part, KalmanHedge) and isinstance(again, KalmanHedge):
        assert_array_equal(again.state_.dates, part.state_.dates)
        assert_array_equal(again.state_.mean, part.state_.mean)
        assert_array_equal(again.state_.covariance, part.state_.covariance)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kalman_delta": 0.0}, "kalman_delta"),
        ({"kalman_delta": 1.0}, "kalman_delta"),
        ({"kalman_obs_var": -1.0}, "kalman_obs_var"),
    ],
)
def test_bad_spec_names_the_argument(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HedgeSpec(part="kalman", **kwargs)


def test_bad_inputs_name_the_argument(pair: dict[str, np.ndarray]) -> None:
    dates, log_y, log_x = window(pair, 0, FITTED)
    coefficients = screening(pair, FITTED)
    with pytest.raises(ValueError, match="log_x must have the shape"):
        KalmanHedge().fit(dates, log_y, log_x[:-1], **coefficients)
    with pytest.raises(ValueError, match="dates must be strictly increasing"):
        KalmanHedge().fit(dates[::-1], log_y, log_x, **coefficients)
    with pytest.raises(ValueError, match="log_x is constant"):
        KalmanHedge().fit(dates, log_y, np.full(FITTED, 3.0), **coefficients)
