"""The core features: the spread's level, change and volatility, and the legs' co-movement.

Every value at date t uses prices up to t only (rolling windows end at t).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlflow_pairs.features._base import Feature, PairPanel

__all__ = ["ReturnCorrelation", "SpreadReturn", "SpreadVolatility", "SpreadZScore"]


def _window(value: int, name: str) -> int:
    if value < 2:
        raise ValueError(f"{name} must be at least 2, got {value}")
    return value


class SpreadZScore(Feature):
    """``(spread - rolling mean) / rolling std`` over the last ``window`` dates."""

    name = "spread_zscore"
    columns = ("spread_zscore",)
    signed = ("spread_zscore",)
    description = "Spread z-score over a rolling window"

    def __init__(self, window: int = 20) -> None:
        self.window = _window(window, "window")
        self.min_history = window

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        spread = pd.DataFrame(panel.spread)
        rolling = spread.rolling(self.window, min_periods=self.window)
        return {"spread_zscore": ((spread - rolling.mean()) / rolling.std(ddof=1)).to_numpy()}


class SpreadReturn(Feature):
    """Daily change of the spread (a log-return of the hedged position)."""

    name = "spread_return"
    columns = ("spread_return",)
    signed = ("spread_return",)
    description = "Daily change of the spread"
    min_history = 2

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        change = np.full_like(panel.spread, np.nan)
        change[1:] = np.diff(panel.spread, axis=0)
        return {"spread_return": change}


class SpreadVolatility(Feature):
    """Rolling standard deviation of the spread's daily change."""

    name = "rolling_volatility"
    columns = ("spread_volatility",)
    description = "Rolling volatility of the spread's daily change"

    def __init__(self, window: int = 20) -> None:
        self.window = _window(window, "window")
        self.min_history = window + 1

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        change = pd.DataFrame(panel.spread).diff()
        volatility = change.rolling(self.window, min_periods=self.window).std(ddof=1)
        return {"spread_volatility": volatility.to_numpy()}


class ReturnCorrelation(Feature):
    """Rolling correlation of the two legs' daily log-returns."""

    name = "return_correlation"
    columns = ("return_correlation",)
    description = "Rolling correlation of the legs' daily log-returns"

    def __init__(self, window: int = 60) -> None:
        self.window = _window(window, "window")
        self.min_history = window + 1

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        ry = pd.DataFrame(np.log(panel.y)).diff()
        rx = pd.DataFrame(np.log(panel.x)).diff()
        correlation = ry.rolling(self.window, min_periods=self.window).corr(rx)
        return {"return_correlation": correlation.to_numpy()}
