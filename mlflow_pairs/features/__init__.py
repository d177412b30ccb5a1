"""Per-pair features for the sequence model; plugins add their own through
``register_features``."""

from mlflow_pairs.features._base import (
    Feature,
    FeatureError,
    PairFrame,
    PairPanel,
    compute_features,
)
from mlflow_pairs.features.core import (
    ReturnCorrelation,
    SpreadReturn,
    SpreadVolatility,
    SpreadZScore,
)

__all__ = [
    "Feature",
    "FeatureError",
    "PairFrame",
    "PairPanel",
    "ReturnCorrelation",
    "SpreadReturn",
    "SpreadVolatility",
    "SpreadZScore",
    "compute_features",
]
