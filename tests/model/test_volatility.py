"""The GARCH part: parameter recovery, and filtering equal to arch's full-history filter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from arch import arch_model

from mlflow_pairs.model import GarchPart, GarchSpec
from tests.model.simulate import garch_noise

OMEGA, ALPHA, BETA = 0.05, 0.08, 0.90


@pytest.fixture(scope="module")
def returns() -> pd.Series:
    shocks, _ = garch_noise(np.random.default_rng(42), 6000, OMEGA, ALPHA, BETA)
    # Spread changes are about 1% a day; the part rescales them (by 100 here).
    return pd.Series(shocks / 100 + 1e-4, index=pd.bdate_range("2000-01-03", periods=6000))


def test_known_parameters_are_recovered(returns: pd.Series) -> None:
    part = GarchPart(GarchSpec()).fit(returns.iloc[:5000], "SIM/ULATED")
    assert part.scale_ == 100
    params = part.params_
    # Stated tolerance with 5,000 days: alpha and beta within 0.03, omega within 40%.
    assert params["alpha[1]"] == pytest.approx(ALPHA, abs=0.03)
    assert params["beta[1]"] == pytest.approx(BETA, abs=0.03)
    assert params["omega"] == pytest.approx(OMEGA, rel=0.4)
    assert part.long_run_variance == pytest.approx(OMEGA / (1 - ALPHA - BETA), rel=0.3)


@pytest.mark.parametrize(
    "spec",
    [
        GarchSpec(),
        GarchSpec(o=1, dist="t"),
        GarchSpec(p=2, q=2, mean="zero"),
        GarchSpec(p=1, o=2, q=3),
    ],
    ids=["garch11", "gjr-t", "garch22-zero-mean", "gjr123"],
)
def test_filter_equals_arch_full_history_filter(returns: pd.Series, spec: GarchSpec) -> None:
    fitted = 3000
    part = GarchPart(spec).fit(returns.iloc[:fitted], "SIM")
    model = arch_model(
        returns.to_numpy() * part.scale_,
        mean="Constant" if spec.mean == "constant" else "Zero",
        vol="GARCH",
        p=spec.p,
        o=spec.o,
        q=spec.q,
        dist=spec.dist,
        rescale=False,
    )
    names = model.fit(disp="off").params.index
    full = model.fix(pd.Series(part.params_)[names]).conditional_volatility ** 2
    for start in (1000, 2800, fitted - 1):  # requests overlapping the fitted days
        variance, _, forecast = part.filter(returns.iloc[start:])
        np.testing.assert_allclose(variance[1:], full[start + 1 :], rtol=1e-9)
        np.testing.assert_allclose(forecast[:-1], full[start + 1 :], rtol=1e-9)
    # After a gap the start is approximate, and forgotten within a year of trading days.
    variance, _, _ = part.filter(returns.iloc[fitted + 300 :])
    assert variance[-1] == pytest.approx(full[-1], rel=1e-6)


def test_filter_never_refits(returns: pd.Series) -> None:
    part = GarchPart().fit(returns.iloc[:2000], "SIM")
    before = dict(part.params_)
    part.filter(returns.iloc[1500:] * 3)
    assert part.params_ == before


def test_round_trip_through_dict(returns: pd.Series) -> None:
    part = GarchPart(GarchSpec(o=1)).fit(returns.iloc[:1500], "SIM")
    again = GarchPart.from_dict(part.to_dict())
    for a, b in zip(
        part.filter(returns.iloc[1000:]), again.filter(returns.iloc[1000:]), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_too_little_data_names_the_pair() -> None:
    short = pd.Series(
        np.random.default_rng(0).normal(0, 0.01, 20), index=pd.bdate_range("2020-01-01", periods=20)
    )
    with pytest.raises(ValueError, match="pair AAA/BBB: GARCH needs at least 50 returns"):
        GarchPart().fit(short, "AAA/BBB")


def test_non_convergence_is_a_warning_naming_the_pair(returns: pd.Series) -> None:
    from mlflow_pairs.model import GarchConvergenceWarning

    with pytest.warns(GarchConvergenceWarning, match="GARCH for pair AAPL/MSFT did not converge"):
        part = GarchPart(GarchSpec(), max_iterations=1).fit(returns.iloc[:1000], "AAPL/MSFT")
    assert set(part.params_) == {"mu", "omega", "alpha[1]", "beta[1]"}  # still usable
