"""The built-in model parts: the static and Kalman hedges, GARCH (GJR) and EGARCH."""

from __future__ import annotations

from collections.abc import Callable

from mlflow_pairs.hookspecs import hookimpl
from mlflow_pairs.model.egarch import EgarchPart
from mlflow_pairs.model.hedge import KalmanHedge, StaticHedge
from mlflow_pairs.model.volatility import GarchPart


@hookimpl
def register_hedge_parts(register: Callable[[type], None]) -> None:
    register(StaticHedge)
    register(KalmanHedge)


@hookimpl
def register_volatility_parts(register: Callable[[type], None]) -> None:
    register(GarchPart)
    register(EgarchPart)
