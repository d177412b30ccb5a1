"""The core features: spread z-score, spread return, rolling volatility, return correlation."""

from __future__ import annotations

from collections.abc import Callable

from mlflow_pairs.features import Feature
from mlflow_pairs.features.core import (
    ReturnCorrelation,
    SpreadReturn,
    SpreadVolatility,
    SpreadZScore,
)
from mlflow_pairs.hookspecs import hookimpl


@hookimpl
def register_features(register: Callable[[Feature], None]) -> None:
    register(SpreadZScore())
    register(SpreadReturn())
    register(SpreadVolatility())
    register(ReturnCorrelation())
