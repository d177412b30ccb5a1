"""The spread part: a pair's hedge (a :class:`~.parts.HedgePart`) and its z-score."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from mlflow_pairs.features import spread_of
from mlflow_pairs.model.parts import HedgePart

__all__ = ["SpreadPart", "ols_hedge"]


def ols_hedge(log_y: np.ndarray, log_x: np.ndarray) -> tuple[float, float]:
    """Hedge ratio and intercept of the regression ``log y = a + b log x`` (the
    Engle–Granger cointegrating regression the screening runs)."""
    slope, intercept = np.polyfit(log_x, log_y, 1)
    return float(slope), float(intercept)


@dataclass(frozen=True)
class SpreadPart:
    """One pair's spread ``log y - b_t log x - a_t`` and its z-score.

    Attributes
    ----------
    y, x : str
        The symbols of the dependent and the independent leg.
    hedge : HedgePart
        Gives ``(b_t, a_t)`` per date; the static default holds the screening's numbers.
    hedge_ratio, intercept : float
        The screening regression's (tested) hedge ratio and intercept.
    mean, std : float
        The spread's mean and standard deviation over the formation window.
    zscore_window : int, optional
        ``None``: the z-score is ``(spread - mean) / std`` with the formation statistics;
        else a causal rolling mean and standard deviation over this many days (the day
        itself included).
    """

    y: str
    x: str
    hedge: HedgePart
    hedge_ratio: float
    intercept: float
    mean: float
    std: float
    zscore_window: int | None = None

    @property
    def name(self) -> str:
        return f"{self.y}/{self.x}"

    @classmethod
    def fit(
        cls,
        prices: pd.DataFrame,
        y: str,
        x: str,
        hedge: HedgePart,
        *,
        hedge_ratio: float | None = None,
        intercept: float | None = None,
        zscore_window: int | None = None,
    ) -> SpreadPart:
        """Fit on the formation window ``prices``. Without ``hedge_ratio`` and
        ``intercept`` the screening's regression is run here (OLS over ``prices``)."""
        dates = pd.DatetimeIndex(prices.index).as_unit("ns").to_numpy()
        ly, lx = np.log(prices[y].to_numpy(dtype=float)), np.log(prices[x].to_numpy(dtype=float))
        if hedge_ratio is None or intercept is None:
            hedge_ratio, intercept = ols_hedge(ly, lx)
        hedge.fit(dates, ly, lx, hedge_ratio=float(hedge_ratio), intercept=float(intercept))
        beta, alpha = hedge.filter(dates, ly, lx)
        spread = spread_of(ly, lx, beta, alpha)
        std = float(np.std(spread, ddof=1))
        if not np.isfinite(std) or std == 0:
            raise ValueError(f"pair {y}/{x}: the spread is constant over the fitting window")
        return cls(
            y, x, hedge, float(hedge_ratio), float(intercept), float(np.mean(spread)), std,
            zscore_window,
        )  # fmt: skip

    def spread_values(
        self, dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(spread, hedge ratio in force), each of shape (n,), on ``dates``."""
        beta, alpha = self.hedge.filter(dates, log_y, log_x)
        return spread_of(log_y, log_x, beta, alpha), beta

    def spread(self, prices: pd.DataFrame) -> pd.Series:
        """The spread on the dates of ``prices``."""
        dates = pd.DatetimeIndex(prices.index).as_unit("ns").to_numpy()
        values, _ = self.spread_values(
            dates,
            np.log(prices[self.y].to_numpy(dtype=float)),
            np.log(prices[self.x].to_numpy(dtype=float)),
        )
        return pd.Series(values, index=prices.index, name=self.name)

    def zscore_values(self, spread: np.ndarray) -> np.ndarray:
        """The z-score of ``spread`` (shape (n,)); NaN before a rolling window fills."""
        if self.zscore_window is None:
            return (spread - self.mean) / self.std
        rolling = pd.Series(spread).rolling(self.zscore_window, min_periods=self.zscore_window)
        std = rolling.std().to_numpy()
        return cast(
            np.ndarray, (spread - rolling.mean().to_numpy()) / np.where(std > 0, std, np.nan)
        )

    def zscore(self, spread: pd.Series) -> pd.Series:
        return pd.Series(self.zscore_values(spread.to_numpy()), index=spread.index)

    def to_dict(self) -> dict[str, Any]:
        return {
            "y": self.y,
            "x": self.x,
            "hedge_part": type(self.hedge).name,
            "hedge": self.hedge.to_dict(),
            "hedge_ratio": self.hedge_ratio,
            "intercept": self.intercept,
            "mean": self.mean,
            "std": self.std,
            "zscore_window": self.zscore_window,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], hedge_parts: Mapping[str, Any]) -> SpreadPart:
        """Restore from :meth:`to_dict`; ``hedge_parts`` maps part names to classes."""
        kind = data["hedge_part"]
        if kind not in hedge_parts:
            known = ", ".join(sorted(hedge_parts)) or "none"
            raise ValueError(
                f"unknown hedge part {kind!r} (available: {known}); install the plugin "
                "that registers it"
            )
        return cls(
            data["y"], data["x"], hedge_parts[kind].from_dict(data["hedge"]),
            float(data["hedge_ratio"]), float(data["intercept"]), float(data["mean"]),
            float(data["std"]), data["zscore_window"],
        )  # fmt: skip
