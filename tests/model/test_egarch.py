"""The EGARCH part: filtering equal to arch's full-history EGARCH filter and forecast."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from mlflow_pairs.model.egarch import EgarchPart
from mlflow_pairs.model.parts import VolatilityPart
from mlflow_pairs.model.volatility import GarchConvergenceWarning, GarchSpec
from tests.model.simulate import garch_noise

FITTED = 3000

SPECS = [
    GarchSpec(part="egarch"),
    GarchSpec(part="egarch", o=1, dist="t"),
    GarchSpec(part="egarch", p=2, o=1, q=2, mean="zero"),
]
SPEC_IDS = ["egarch11", "egarch111-t", "egarch212-zero-mean"]


@pytest.fixture(scope="module")
def returns() -> pd.Series:
    shocks, _ = garch_noise(np.random.default_rng(42), 6000, 0.05, 0.08, 0.90)
    # Spread changes are about 1% a day; the part rescales them (by 100 here).
    return pd.Series(shocks / 100 + 1e-4, index=pd.bdate_range("2000-01-03", periods=6000))


@pytest.fixture(scope="module", params=SPECS, ids=SPEC_IDS)
def fitted(request: pytest.FixtureRequest, returns: pd.Series) -> EgarchPart:
    return EgarchPart(request.param).fit(returns.iloc[:FITTED], "SIM")


def arch_fixed(part: EgarchPart, data: np.ndarray) -> object:
    """arch's EGARCH with the part's parameters, fixed, on ``data`` (scaled units)."""
    spec = part.spec
    model = arch_model(
        data,
        mean="Constant" if spec.mean == "constant" else "Zero",
        vol="EGARCH",
        p=spec.p,
        o=spec.o,
        q=spec.q,
        dist="normal" if spec.dist == "normal" else "t",
        rescale=False,
    )
    return model.fix(pd.Series(part.params_))


def arch_variance(part: EgarchPart, returns: pd.Series) -> np.ndarray:
    """arch's conditional variance over ``returns``, from its backcast on the first day.

    ``fix`` computes the backcast from residuals about the sample mean of the data it is
    given, so over the full history it starts slightly off the fit's start (the mean of
    the fitted days only); the difference is forgotten geometrically and below 1e-12
    well before day 1000, from where the full-history path is compared.
    """
    fixed = arch_fixed(part, returns.to_numpy() * part.scale_)
    return np.asarray(fixed.conditional_volatility) ** 2  # type: ignore[attr-defined]


def test_filter_equals_arch_full_history_filter(fitted: EgarchPart, returns: pd.Series) -> None:
    # The state of the fitted days is arch's own filter of them.
    fitted_days = arch_variance(fitted, returns.iloc[:FITTED])
    np.testing.assert_allclose(fitted.state_.variance, fitted_days, rtol=1e-12)
    full = arch_variance(fitted, returns)
    for start in (1000, 2800, FITTED - 1):  # requests overlapping the fitted days
        variance, _, forecast = fitted.filter(returns.iloc[start:])
        np.testing.assert_allclose(variance, full[start:], rtol=1e-9)
        np.testing.assert_allclose(forecast[:-1], full[start + 1 :], rtol=1e-9)
    # Starting the day after the fitted ones: the first change is that day's innovation.
    variance, _, forecast = fitted.filter(returns.iloc[FITTED:])
    np.testing.assert_allclose(variance, full[FITTED:], rtol=1e-9)
    np.testing.assert_allclose(forecast[:-1], full[FITTED + 1 :], rtol=1e-9)
    # After a gap the start is approximate, and forgotten within a few years of days.
    variance, _, _ = fitted.filter(returns.iloc[FITTED + 300 :])
    assert variance[-1] == pytest.approx(full[-1], rel=1e-6)


def test_forecast_equals_arch_forecast_at_the_end_of_the_fitted_days(
    fitted: EgarchPart, returns: pd.Series
) -> None:
    fixed = arch_fixed(fitted, returns.iloc[:FITTED].to_numpy() * fitted.scale_)
    expected = fixed.forecast(horizon=1, reindex=False).variance.iloc[-1, 0]  # type: ignore[attr-defined]
    _, _, forecast = fitted.filter(returns.iloc[FITTED - 250 : FITTED])
    assert forecast[-1] == pytest.approx(expected, rel=1e-9)


def test_residuals_are_the_demeaned_scaled_changes(fitted: EgarchPart, returns: pd.Series) -> None:
    _, resid, _ = fitted.filter(returns.iloc[FITTED - 10 :])
    expected = returns.iloc[FITTED - 10 :].to_numpy() * fitted.scale_ - fitted.mu
    np.testing.assert_allclose(resid, expected, rtol=1e-12)


def test_extend_state_continues_exactly(returns: pd.Series) -> None:
    part = EgarchPart(GarchSpec(part="egarch", o=1)).fit(returns.iloc[:FITTED], "SIM")
    full = arch_variance(part, returns)
    part.extend_state(returns.iloc[:4000])
    assert len(part.state_.dates) == 4000
    np.testing.assert_allclose(part.state_.variance[1000:], full[1000:4000], rtol=1e-9)
    variance, _, _ = part.filter(returns.iloc[3900:])
    np.testing.assert_allclose(variance, full[3900:], rtol=1e-9)


def test_long_run_variance_is_exp_of_the_mean_log_variance(fitted: EgarchPart) -> None:
    params = fitted.params_
    beta = sum(value for key, value in params.items() if key.startswith("beta["))
    assert fitted.persistence == pytest.approx(beta, rel=1e-15)
    assert fitted.long_run_variance == pytest.approx(
        math.exp(params["omega"] / (1 - beta)), rel=1e-12
    )
    # A level of the variance: between the smallest and the largest fitted one.
    assert fitted.state_.variance.min() < fitted.long_run_variance < fitted.state_.variance.max()


def test_filter_never_refits(returns: pd.Series) -> None:
    part = EgarchPart().fit(returns.iloc[:2000], "SIM")
    before = dict(part.params_)
    part.filter(returns.iloc[1500:] * 3)
    assert part.params_ == before


def test_round_trip_through_json(returns: pd.Series) -> None:
    part = EgarchPart(GarchSpec(part="egarch", o=1)).fit(returns.iloc[:1500], "SIM")
    again = EgarchPart.from_dict(json.loads(json.dumps(part.to_dict())))
    assert type(again) is EgarchPart
    assert again.spec == part.spec
    assert again.to_dict() == part.to_dict()
    for a, b in zip(
        part.filter(returns.iloc[1000:]), again.filter(returns.iloc[1000:]), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_implements_the_volatility_protocol(returns: pd.Series) -> None:
    part = EgarchPart().fit(returns.iloc[:500], "SIM")  # scale_ exists once fitted
    assert isinstance(part, VolatilityPart)
    assert part.name == "egarch"
    assert part.spec.part == "egarch"


def test_bad_arguments_name_the_pair_or_the_spec(returns: pd.Series) -> None:
    with pytest.raises(ValueError, match="pair AAA/BBB: EGARCH needs at least 50 returns"):
        EgarchPart().fit(returns.iloc[:20], "AAA/BBB")
    with pytest.raises(ValueError, match="spec: EGARCH needs p > 0 or o > 0"):
        EgarchPart(GarchSpec(part="egarch", p=0, o=0)).fit(returns.iloc[:200], "AAA/BBB")


def test_non_convergence_is_a_warning_naming_the_pair(returns: pd.Series) -> None:
    with pytest.warns(GarchConvergenceWarning, match="EGARCH for pair AAPL/MSFT did not converge"):
        part = EgarchPart(max_iterations=1).fit(returns.iloc[:1000], "AAPL/MSFT")
    assert set(part.params_) == {"mu", "omega", "alpha[1]", "beta[1]"}  # still usable
