"""The protocols of the model's swappable per-pair parts.

A *hedge part* turns the legs' log prices into the spread ``log y - b_t log x - a_t``; a
*volatility part* models the spread's daily changes. The built-ins (``static`` and
``kalman`` hedges, ``garch`` and ``egarch`` volatility) and any plugin's parts implement
these protocols and are registered by name through the ``register_hedge_parts`` and
``register_volatility_parts`` hooks; the configuration picks them by that name
(``hedge.part``, ``garch.part``). The model receives the classes, never the registry.

Like ``arch``'s volatility processes, each part is fitted once and then only *filters*:
inference continues the state stored at the end of the fitted dates, so a request that
overlaps them reproduces the full-history path exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = ["HedgePart", "VolatilityPart"]


@runtime_checkable
class HedgePart(Protocol):
    """A pair's hedge ratio and intercept in force on each date.

    ``__init__(spec)`` takes a :class:`~mlflow_pairs.model.hedge.HedgeSpec` (a part uses
    the fields it knows).
    """

    name: ClassVar[str]

    def fit(
        self,
        dates: np.ndarray,
        log_y: np.ndarray,
        log_x: np.ndarray,
        *,
        hedge_ratio: float,
        intercept: float,
    ) -> HedgePart:
        """Fit on the formation window, starting from the screening regression's
        ``hedge_ratio`` and ``intercept`` (the pair's tested spread)."""
        ...

    def filter(
        self, dates: np.ndarray, log_y: np.ndarray, log_x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(hedge_ratio, intercept), each of shape (n,), for the spread on each date,
        known from data before that date only (causal)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description that :meth:`from_dict` restores exactly."""
        ...


@runtime_checkable
class VolatilityPart(Protocol):
    """Conditional volatility of a pair's daily spread changes.

    ``__init__(spec)`` takes a :class:`~mlflow_pairs.model.volatility.GarchSpec`.
    """

    name: ClassVar[str]
    scale_: float

    def fit(self, returns: pd.Series, name: str = "") -> VolatilityPart:
        """Estimate on the training window's daily spread changes."""
        ...

    def extend_state(self, returns: pd.Series) -> None:
        """Carry the stored state over later dates with the fitted parameters."""
        ...

    def filter_values(
        self, dates: np.ndarray, changes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Conditional variance, residual and one-day-ahead variance per date (scaled
        units), continuing the stored state."""
        ...

    @property
    def long_run_variance(self) -> float:
        """The unconditional variance (scaled units)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description that :meth:`from_dict` restores exactly."""
        ...
