"""The feature-builder contract and the pair data it computes from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Feature", "FeatureError", "PairFrame", "PairPanel", "compute_features"]


class FeatureError(ValueError):
    """A feature returned something other than what it declared."""


@dataclass(frozen=True)
class PairFrame:
    """The two legs of a pair and their spread, on one DatetimeIndex.

    Attributes
    ----------
    y, x : Series of shape (n_observations,)
        Prices of the dependent and the independent leg, named by symbol.
    spread : Series of shape (n_observations,)
        ``log(y) - hedge_ratio * log(x) - intercept``.
    hedge_ratio, intercept : float
        Fitted on the formation window, before the dates features are used on.
    """

    y: pd.Series
    x: pd.Series
    spread: pd.Series
    hedge_ratio: float
    intercept: float

    @classmethod
    def from_prices(
        cls, y: pd.Series, x: pd.Series, hedge_ratio: float, intercept: float = 0.0
    ) -> PairFrame:
        """Build the spread from prices and a hedge ratio fitted elsewhere."""
        if not y.index.equals(x.index):
            raise ValueError("y and x must share one date index")
        spread = np.log(y) - hedge_ratio * np.log(x) - intercept
        return cls(
            y=y,
            x=x,
            spread=spread.rename("spread"),
            hedge_ratio=float(hedge_ratio),
            intercept=float(intercept),
        )

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.spread.index)


class Feature(ABC):
    """A named builder of per-pair, per-date feature columns.

    Subclasses set ``name`` (unique across plugins), ``columns`` (the output column names,
    unique across plugins) and ``description``, and implement :meth:`compute`. The value at
    date t may use data up to and including t only; ``min_history`` says how many dates a
    value needs (earlier rows may be NaN). ``sectors`` limits the sector models that use
    the feature (``None``: every sector).
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    description: str = ""
    min_history: int = 1
    sectors: tuple[str, ...] | None = None

    @abstractmethod
    def compute(self, pair: PairFrame) -> pd.DataFrame:
        """Feature values.

        Returns
        -------
        DataFrame of shape (n_observations, len(columns))
            Indexed like ``pair.spread``, with exactly the declared ``columns``.
        """

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        """Values for many pairs on one date index: ``{column: array (n_dates, n_pairs)}``.

        The default calls :meth:`compute` once per pair; features used in serving may
        override it with a vectorised version (it must give the same values).
        """
        results = [self.compute(pair) for pair in panel.pairs()]
        return {
            c: np.column_stack([r[c].to_numpy(dtype=float) for r in results]) for c in self.columns
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, columns={self.columns!r})"


@dataclass(frozen=True)
class PairPanel:
    """Several pairs on one DatetimeIndex, as arrays of shape (n_dates, n_pairs).

    Attributes
    ----------
    index : DatetimeIndex
        The dates.
    y, x : ndarray of shape (n_dates, n_pairs)
        Prices of the legs.
    spread : ndarray of shape (n_dates, n_pairs)
        ``log y - hedge_ratio * log x - intercept``.
    hedge_ratio, intercept : ndarray of shape (n_pairs,)
    """

    index: pd.DatetimeIndex
    y: np.ndarray
    x: np.ndarray
    spread: np.ndarray
    hedge_ratio: np.ndarray
    intercept: np.ndarray

    def pairs(self) -> list[PairFrame]:
        return [
            PairFrame(
                y=pd.Series(self.y[:, k], index=self.index),
                x=pd.Series(self.x[:, k], index=self.index),
                spread=pd.Series(self.spread[:, k], index=self.index, name="spread"),
                hedge_ratio=float(self.hedge_ratio[k]),
                intercept=float(self.intercept[k]),
            )
            for k in range(self.spread.shape[1])
        ]


def compute_features(pair: PairFrame, features: Sequence[Feature]) -> pd.DataFrame:
    """All ``features`` of ``pair`` side by side, after checking each one's output."""
    frames = []
    for feature in features:
        values = feature.compute(pair)
        if not isinstance(values, pd.DataFrame):
            raise FeatureError(
                f"feature {feature.name!r} returned {type(values).__name__}, not a DataFrame"
            )
        if tuple(values.columns) != tuple(feature.columns):
            raise FeatureError(
                f"feature {feature.name!r} returned columns {list(values.columns)}, "
                f"declared {list(feature.columns)}"
            )
        if not values.index.equals(pair.spread.index):
            raise FeatureError(f"feature {feature.name!r} returned a different date index")
        frames.append(values)
    if not frames:
        return pd.DataFrame(index=pair.spread.index)
    return pd.concat(frames, axis=1)
