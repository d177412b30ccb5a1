"""Technology-sector plugin for mlflow-pairs: the ``technology`` universe and the
``tech_jump_intensity`` feature."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mlflow_pairs import hookimpl
from mlflow_pairs.data import Universe
from mlflow_pairs.features import Feature, PairPanel

__all__ = ["TECHNOLOGY_SYMBOLS", "JumpIntensity"]

#: GICS Information Technology stocks of the bundled sample.
TECHNOLOGY_SYMBOLS = ("AAPL", "AMD", "MSFT")


class JumpIntensity(Feature):
    """Share of the last ``window`` days on which either leg jumped.

    A jump is an absolute daily log-return above ``threshold`` times the leg's standard
    deviation over the ``lookback`` days before it (so the day itself does not inflate
    its own yardstick).
    """

    name = "tech_jump_intensity"
    columns = ("tech_jump_intensity",)
    description = "Share of recent days with an earnings-style jump in either leg"
    sectors = ("technology",)

    def __init__(self, window: int = 20, lookback: int = 60, threshold: float = 3.0) -> None:
        if window < 1 or lookback < 2 or threshold <= 0:
            raise ValueError("window >= 1, lookback >= 2 and threshold > 0 are required")
        self.window = window
        self.lookback = lookback
        self.threshold = threshold
        self.min_history = lookback + window + 1

    def _jumps(self, prices: pd.DataFrame) -> pd.DataFrame:
        returns = np.log(prices).diff()
        scale = returns.rolling(self.lookback, min_periods=self.lookback).std(ddof=1).shift(1)
        jumps = (returns.abs() > self.threshold * scale).astype("float64")
        return jumps.where(scale.notna())

    def _intensity(self, y: pd.DataFrame, x: pd.DataFrame) -> pd.DataFrame:
        either = np.fmax(self._jumps(y), self._jumps(x))
        return either.rolling(self.window, min_periods=self.window).mean()

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        intensity = self._intensity(pd.DataFrame(panel.y), pd.DataFrame(panel.x))
        return {"tech_jump_intensity": intensity.to_numpy()}


@hookimpl
def register_universes(register: Callable[[Universe], None]) -> None:
    register(
        Universe(
            name="technology",
            sector="technology",
            symbols=TECHNOLOGY_SYMBOLS,
            price_source="sample",
            description="Technology (GICS Information Technology): AAPL, AMD, MSFT",
        )
    )


@hookimpl
def register_features(register: Callable[[Feature], None]) -> None:
    register(JumpIntensity())
