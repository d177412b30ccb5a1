"""Per-pair features for the sequence model; plugins add their own through
``register_features``."""

from mlflow_pairs.features._base import (
    Feature,
    PairFrame,
    PairPanel,
    spread_of,
)
from mlflow_pairs.features.core import (
    ReturnCorrelation,
    SpreadReturn,
    SpreadVolatility,
    SpreadZScore,
)

__all__ = [
    "Feature",
    "PairFrame",
    "PairPanel",
    "ReturnCorrelation",
    "SpreadReturn",
    "SpreadVolatility",
    "SpreadZScore",
    "spread_of",
]
