"""The built-in model parts: the static and Kalman hedges, GARCH (GJR) and EGARCH.

The model package (torch, arch, scipy.stats) is imported when the parts are asked for,
not when the plugins load: commands that never fit a model start without it.
"""

from __future__ import annotations

from collections.abc import Callable

from mlflow_pairs.hookspecs import hookimpl


@hookimpl
def register_hedge_parts(register: Callable[[type], None]) -> None:
    from mlflow_pairs.model.hedge import KalmanHedge, StaticHedge

    register(StaticHedge)
    register(KalmanHedge)


@hookimpl
def register_volatility_parts(register: Callable[[type], None]) -> None:
    from mlflow_pairs.model.egarch import EgarchPart
    from mlflow_pairs.model.volatility import GarchPart

    register(GarchPart)
    register(EgarchPart)
