"""A third-party volatility part for the tests: RiskMetrics EWMA variance (lambda 0.94),
and the plugin that registers it.

A plain module (no pytest, no test fixtures) so that the "installed" copy of the plugin,
which a scoring server or a ``train`` subprocess imports through an entry point, pulls in
nothing else of the test suite.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from mlflow_pairs import hookimpl
from mlflow_pairs.model.volatility import GarchSpec, GarchState

LAMBDA = 0.94


def _ewma(variance0: float, resid: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(variance, forecast): ``forecast[t] = lam variance[t] + (1 - lam) resid[t]^2`` and
    ``variance[t + 1] = forecast[t]``; an unknown (NaN) residual leaves the variance as is."""
    n = len(resid)
    variance, forecast = np.empty(n), np.empty(n)
    current = variance0
    for t in range(n):
        variance[t] = current
        r = resid[t]
        if np.isfinite(r):
            current = lam * current + (1 - lam) * r * r
        forecast[t] = current
    return variance, forecast


class EwmaPart:
    """RiskMetrics EWMA variance of the (scaled, zero-mean) daily spread changes.

    ``fit`` estimates nothing but the scale and the starting variance (the training
    window's mean square); like :class:`GarchPart` it keeps the variance path of the
    fitted days and continues it when filtering.
    """

    name: ClassVar[str] = "ewma"
    lam: ClassVar[float] = LAMBDA

    def __init__(self, spec: GarchSpec | None = None) -> None:
        self.spec = spec or GarchSpec(part=self.name)

    def fit(self, returns: pd.Series, name: str = "") -> EwmaPart:
        clean = returns.dropna()
        std = float(clean.std())
        if len(clean) < 2 or not np.isfinite(std) or std == 0:
            raise ValueError(f"pair {name}: EWMA needs varying spread changes")
        self.scale_ = float(10 ** round(-math.log10(std)))
        values = clean.to_numpy(dtype=float) * self.scale_
        self.variance0_ = float(np.mean(values * values))
        variance, _ = _ewma(self.variance0_, values, self.lam)
        self.state_ = GarchState(clean.index.to_numpy(), variance, values)
        return self

    @property
    def long_run_variance(self) -> float:
        return self.variance0_

    def filter_values(
        self, dates: np.ndarray, changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        state = self.state_
        anchor = int(np.searchsorted(state.dates, dates[0], side="right")) - 1
        if anchor >= 0 and dates[0] > state.dates[anchor] and np.isfinite(changes[0]):
            # A new first day: run from the anchor day, so its change is an innovation.
            variance, resid, forecast = self.filter_values(
                np.r_[state.dates[anchor], dates], np.r_[np.nan, changes]
            )
            return variance[1:], resid[1:], forecast[1:]
        resid = np.asarray(changes, dtype=float) * self.scale_
        if anchor >= 0:
            variance0, resid[0] = state.variance[anchor], state.resid[anchor]
        else:
            variance0, resid[0] = self.long_run_variance, np.nan
        variance, forecast = _ewma(variance0, resid, self.lam)
        return variance, np.where(np.isfinite(resid), resid, 0.0), forecast

    def extend_state(self, returns: pd.Series) -> None:
        last = self.state_.dates[-1]
        following = returns[returns.index >= last]
        if len(following) < 2 or following.index[0] != last:
            return
        variance, resid, _ = self.filter_values(
            following.index.to_numpy(), following.to_numpy(dtype=float)
        )
        self.state_ = GarchState(
            np.r_[self.state_.dates, following.index.to_numpy()[1:]],
            np.r_[self.state_.variance, variance[1:]],
            np.r_[self.state_.resid, resid[1:]],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "scale": self.scale_,
            "variance0": self.variance0_,
            "state": {
                "dates": [str(np.datetime_as_string(d, unit="D")) for d in self.state_.dates],
                "variance": self.state_.variance.tolist(),
                "resid": self.state_.resid.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EwmaPart:
        part = cls(GarchSpec(**data["spec"]))
        part.scale_ = float(data["scale"])
        part.variance0_ = float(data["variance0"])
        state = data["state"]
        part.state_ = GarchState(
            np.array(state["dates"], dtype="datetime64[ns]"),
            np.array(state["variance"], dtype=float),
            np.array(state["resid"], dtype=float),
        )
        return part


class EwmaPlugin:
    @hookimpl
    def register_volatility_parts(self, register: Callable[[type], None]) -> None:
        register(EwmaPart)


#: What the installed copy of the plugin exposes as its entry point.
plugin = EwmaPlugin()
