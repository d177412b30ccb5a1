"""The volatility part: GARCH(p, o, q) from ``arch``, fitted once, then only filtered.

Inference never refits: the fitted parameters are applied with the variance recursion,
carried on from the state at the end of the fitting data (the conditional variances and
residuals of its last days are kept), so the conditional volatility equals ``arch``'s
filter over the full history. (``arch``'s ``fix()`` on new data alone would restart the
recursion from a backcast.)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from mlflow_pairs.config import GarchSettings

#: The one definition of the defaults: the ``garch`` section of the configuration.
_DEFAULTS = GarchSettings()

__all__ = ["GarchConvergenceWarning", "GarchPart", "GarchSpec", "GarchState"]


class GarchConvergenceWarning(Warning):
    """The GARCH optimiser did not converge for a pair (the pair is named)."""


@dataclass(frozen=True)
class GarchSpec:
    """The volatility part (by registered name), its orders, error distribution and mean.

    ``garch`` with ``o > 0`` is GJR-GARCH."""

    part: str = _DEFAULTS.part
    p: int = _DEFAULTS.p
    o: int = _DEFAULTS.o
    q: int = _DEFAULTS.q
    dist: str = _DEFAULTS.dist
    mean: str = _DEFAULTS.mean


@dataclass(frozen=True)
class GarchState:
    """Conditional variances and residuals (scaled units) of the fitted days."""

    dates: np.ndarray  # datetime64[ns]
    variance: np.ndarray
    resid: np.ndarray


class GarchPart:
    """GARCH(p, o, q) on scaled daily spread changes.

    ``fit`` estimates the parameters with ``arch``; ``filter`` applies them to returns
    without refitting.
    """

    name: ClassVar[str] = "garch"
    #: ``arch_model``'s ``vol`` argument (also the name in messages).
    _arch_vol: ClassVar[Literal["GARCH", "EGARCH"]] = "GARCH"

    def __init__(self, spec: GarchSpec | None = None, max_iterations: int | None = None) -> None:
        self.spec = spec or GarchSpec()
        self.max_iterations = max_iterations

    # -- fitting ------------------------------------------------------------------------

    def fit(self, returns: pd.Series, name: str = "") -> GarchPart:
        """Estimate on ``returns`` (the training window's daily spread changes)."""
        from arch import arch_model
        from arch.utility.exceptions import ConvergenceWarning

        clean = returns.dropna()
        label = self._arch_vol
        if len(clean) < 50:
            raise ValueError(f"pair {name}: {label} needs at least 50 returns, got {len(clean)}")
        std = float(clean.std())
        if not np.isfinite(std) or std == 0:
            raise ValueError(f"pair {name}: spread returns are constant")
        # arch is best conditioned with returns of order 1-10.
        self.scale_ = float(10 ** round(-math.log10(std)))
        spec = self.spec
        model = arch_model(
            clean.to_numpy() * self.scale_,
            mean="Constant" if spec.mean == "constant" else "Zero",
            vol=label, p=spec.p, o=spec.o, q=spec.q,
            dist="normal" if spec.dist == "normal" else "t",
            rescale=False,
        )  # fmt: skip
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            options = {"maxiter": self.max_iterations} if self.max_iterations else None
            result = model.fit(disp="off", show_warning=True, options=options)
        if result.convergence_flag != 0 or any(
            issubclass(w.category, ConvergenceWarning) for w in caught
        ):
            warnings.warn(
                GarchConvergenceWarning(
                    f"{label} for pair {name} did not converge "
                    f"(flag {result.convergence_flag}); its parameters may be unreliable"
                ),
                stacklevel=2,
            )
        self.params_ = {key: float(value) for key, value in result.params.items()}
        variance = np.asarray(result.conditional_volatility) ** 2
        resid = np.asarray(result.resid)
        # The whole fitted path is kept, so any request overlapping it continues exactly.
        self.state_ = GarchState(clean.index.to_numpy(), variance, resid)
        return self

    # -- parameters ---------------------------------------------------------------------

    @property
    def mu(self) -> float:
        return self.params_.get("mu", 0.0)

    def _coefficients(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        cached: tuple[dict[str, float], tuple[float, np.ndarray, np.ndarray, np.ndarray]] | None = (
            getattr(self, "_coefficient_cache", None)
        )
        if cached is not None and cached[0] is self.params_:
            return cached[1]
        coefficients = self._read_coefficients()
        self._coefficient_cache = (self.params_, coefficients)
        return coefficients

    def _read_coefficients(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        spec = self.spec
        alpha = np.array([self.params_[f"alpha[{i}]"] for i in range(1, spec.p + 1)])
        gamma = np.array([self.params_[f"gamma[{i}]"] for i in range(1, spec.o + 1)])
        beta = np.array([self.params_[f"beta[{i}]"] for i in range(1, spec.q + 1)])
        return self.params_["omega"], alpha, gamma, beta

    @property
    def persistence(self) -> float:
        _, alpha, gamma, beta = self._coefficients()
        return float(alpha.sum() + 0.5 * gamma.sum() + beta.sum())

    @property
    def long_run_variance(self) -> float:
        """Unconditional variance (scaled units); the fitted days' mean when persistent."""
        omega = self._coefficients()[0]
        if self.persistence < 1:
            return omega / (1 - self.persistence)
        return float(np.mean(self.state_.variance))

    # -- filtering ----------------------------------------------------------------------

    def filter(self, returns: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Conditional variance, residual and one-day-ahead variance for each date.

        Parameters
        ----------
        returns : Series of shape (n,)
            Daily spread changes on consecutive trading dates (the first may be NaN).

        Returns
        -------
        variance, resid, forecast : ndarray of shape (n,), scaled units
            ``variance[t]`` is sigma^2_t given data to t-1 and ``forecast[t]`` is
            sigma^2_{t+1} given data to t.

        The state on the first date is the fitted state of the latest fitted date not
        after it, and the recursion runs on from there: exact (``arch``'s full-history
        filter) when the dates overlap the fitted ones or start the day after them (the
        first change is then that day's innovation, from the last fitted spread); after a
        gap the start is approximate and its influence decays geometrically with the
        persistence.
        """
        return self.filter_values(returns.index.to_numpy(), returns.to_numpy(dtype=float))

    def filter_values(
        self, dates: np.ndarray, changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`filter` on plain arrays (``datetime64`` dates, float changes)."""
        state = self.state_
        anchor = int(np.searchsorted(state.dates, dates[0], side="right")) - 1
        if anchor >= 0 and dates[0] > state.dates[anchor] and np.isfinite(changes[0]):
            # The first date is a new day: run from the anchor day itself, so the first
            # day's variance is the anchor's forecast and its change an innovation.
            prior = np.r_[state.dates[anchor], dates]
            variance, resid, forecast = self.filter_values(prior, np.r_[np.nan, changes])
            return variance[1:], resid[1:], forecast[1:]
        return self._filter_from(anchor, np.asarray(changes, dtype=float))

    def _filter_from(
        self, anchor: int, changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The recursion from the stored state of index ``anchor`` (-1: none), whose day is
        the first of ``changes``."""
        from scipy.signal import lfilter, lfiltic

        state = self.state_
        omega, alpha, gamma, beta = self._coefficients()
        lags = max(len(alpha), len(gamma), len(beta), 1)
        values = changes * self.scale_ - self.mu
        if anchor >= 0:
            lo = max(0, anchor - lags + 1)
            var_hist = state.variance[lo : anchor + 1]
            res_hist = state.resid[lo : anchor + 1]
        else:
            var_hist, res_hist = np.array([self.long_run_variance]), np.array([0.0])
        pad = lags - len(var_hist)
        if pad > 0:
            var_hist = np.concatenate([np.full(pad, var_hist[0]), var_hist])
            res_hist = np.concatenate([np.zeros(pad), res_hist])
        n = len(values)
        # e[k] is the residual at time k - lags + 1: history, then the new days.
        e = np.concatenate([res_hist, values[1:]])
        e2 = e * e
        # sigma^2_t = u_t + sum_k beta_k sigma^2_{t-k}, with u_t known from the residuals,
        # is a linear recursion: one IIR filter over t = 1..n (t = n is the forecast).
        u = np.full(n, omega)
        for i, a in enumerate(alpha, start=1):
            u += a * e2[lags - i : lags - i + n]
        if len(gamma):
            negative = e2 * (e < 0)
            for j, g in enumerate(gamma, start=1):
                u += g * negative[lags - j : lags - j + n]
        denominator = np.concatenate([[1.0], -beta])
        if len(beta) == 1:  # GARCH(1,1): the filter's state is beta * sigma^2 of the day before
            initial = np.array([beta[0] * var_hist[-1]])
        else:
            initial = lfiltic([1.0], denominator, y=var_hist[::-1][: len(beta)])
        forecast = lfilter([1.0], denominator, u, zi=initial)[0]
        variance = np.empty(n)
        variance[0], variance[1:] = var_hist[-1], forecast[:-1]
        resid = np.empty(n)
        resid[0], resid[1:] = res_hist[-1], values[1:]
        return variance, resid, forecast

    def extend_state(self, returns: pd.Series) -> None:
        """Carry the stored state over the dates of ``returns`` after the last stored one,
        with the fitted parameters (nothing is refitted). The model does this for its
        validation and test dates, so requests overlapping them continue exactly."""
        last = self.state_.dates[-1]
        following = returns[returns.index >= last]
        if len(following) < 2 or following.index[0] != last:
            return
        variance, resid, _ = self.filter(following)
        self.state_ = GarchState(
            np.r_[self.state_.dates, following.index.to_numpy()[1:]],
            np.r_[self.state_.variance, variance[1:]],
            np.r_[self.state_.resid, resid[1:]],
        )

    # -- persistence --------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        return {
            "spec": vars(self.spec),
            "params": self.params_,
            "scale": self.scale_,
            "state": {
                "dates": [str(np.datetime_as_string(d, unit="D")) for d in self.state_.dates],
                "variance": self.state_.variance.tolist(),
                "resid": self.state_.resid.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> GarchPart:
        part = cls(GarchSpec(**data["spec"]))  # type: ignore[arg-type]
        part.params_ = dict(data["params"])  # type: ignore[call-overload]
        part.scale_ = float(data["scale"])  # type: ignore[arg-type]
        state = data["state"]
        part.state_ = GarchState(
            np.array(state["dates"], dtype="datetime64[ns]"),  # type: ignore[index]
            np.array(state["variance"], dtype=float),  # type: ignore[index]
            np.array(state["resid"], dtype=float),  # type: ignore[index]
        )
        return part
