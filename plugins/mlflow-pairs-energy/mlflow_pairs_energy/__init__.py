"""Energy-sector plugin for mlflow-pairs: the ``energy`` universe and the
``energy_vol_regime`` feature."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from mlflow_pairs import hookimpl
from mlflow_pairs.data import Universe
from mlflow_pairs.features import Feature, PairFrame

__all__ = ["ENERGY_SYMBOLS", "VolatilityRegime"]

#: GICS Energy stocks of the bundled sample.
ENERGY_SYMBOLS = ("CVX", "XOM", "RRC")


class VolatilityRegime(Feature):
    """Short-window over long-window realised volatility of the spread's daily change."""

    name = "energy_vol_regime"
    columns = ("energy_vol_regime",)
    description = "Ratio of short to long realised volatility of the spread"
    sectors = ("energy",)

    def __init__(self, short: int = 10, long: int = 60) -> None:
        if not 2 <= short < long:
            raise ValueError("2 <= short < long is required")
        self.short = short
        self.long = long
        self.min_history = long + 1

    def compute(self, pair: PairFrame) -> pd.DataFrame:
        change = pair.spread.diff()
        short = change.rolling(self.short, min_periods=self.short).std(ddof=1)
        long = change.rolling(self.long, min_periods=self.long).std(ddof=1)
        return pd.DataFrame({"energy_vol_regime": short / long}, index=pair.spread.index)


@hookimpl
def register_universes(register: Callable[[Universe], None]) -> None:
    register(
        Universe(
            name="energy",
            sector="energy",
            symbols=ENERGY_SYMBOLS,
            price_source="sample",
            description="Energy (GICS Energy): CVX, XOM, RRC",
        )
    )


@hookimpl
def register_features(register: Callable[[Feature], None]) -> None:
    register(VolatilityRegime())
