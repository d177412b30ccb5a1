"""The feature-builder contract and the pair data it computes from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

__all__ = ["Feature", "PairFrame", "PairPanel", "spread_of"]


def spread_of(log_y: Any, log_x: Any, hedge_ratio: Any, intercept: Any) -> Any:
    """The spread ``log y - hedge_ratio * log x - intercept``, elementwise.

    The one place the formula is written: screening's regression gives the ratio and
    intercept, the model's hedge parts give them per date, features read the result.
    Works on floats, arrays and Series alike.
    """
    return log_y - hedge_ratio * log_x - intercept


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
        spread = spread_of(np.log(y), np.log(x), hedge_ratio, intercept)
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


class Feature:
    """A named builder of per-pair, per-date feature columns.

    Subclasses set ``name`` (unique across plugins), ``columns`` (the output column names,
    unique across plugins) and ``description``, and implement :meth:`compute_panel` (all
    pairs at once, the form the model calls) or :meth:`compute` (one pair); each defaults
    to the other. The value at date t may use data up to and including t only;
    ``min_history`` says how many dates a value needs (earlier rows may be NaN).
    ``sectors`` limits the sector models that use the feature (``None``: every sector).
    ``signed`` names the columns whose sign flips when the spread is turned upside down (a
    z-score or a change of the spread, not a volatility): the model orients them by the
    sign of the window's last z-score, as it does its own z-score.
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    description: str = ""
    min_history: int = 1
    sectors: tuple[str, ...] | None = None
    signed: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.compute is Feature.compute and cls.compute_panel is Feature.compute_panel:
            raise TypeError(f"feature {cls.__name__} must implement compute_panel or compute")

    def compute_panel(self, panel: PairPanel) -> dict[str, np.ndarray]:
        """Values for many pairs on one date index.

        Returns
        -------
        dict of column name to ndarray of shape (n_dates, n_pairs)
            One entry per declared column.

        The default calls :meth:`compute` once per pair.
        """
        results = [self.compute(pair) for pair in panel.pairs()]
        return {
            c: np.column_stack([r[c].to_numpy(dtype=float) for r in results]) for c in self.columns
        }

    def compute(self, pair: PairFrame) -> pd.DataFrame:
        """Feature values of one pair.

        Returns
        -------
        DataFrame of shape (n_observations, len(columns))
            Indexed like ``pair.spread``, with exactly the declared ``columns``. The
            default is :meth:`compute_panel` on a panel of this one pair.
        """
        computed = self.compute_panel(PairPanel.of(pair))
        return pd.DataFrame(
            {c: np.asarray(computed[c], dtype=float)[:, 0] for c in self.columns},
            index=pair.spread.index,
        )

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

    @classmethod
    def of(cls, pair: PairFrame) -> PairPanel:
        """A panel of the one ``pair``."""

        def column(series: pd.Series) -> np.ndarray:
            return cast(np.ndarray, series.to_numpy(dtype=float).reshape(-1, 1))

        return cls(
            index=pair.index,
            y=column(pair.y),
            x=column(pair.x),
            spread=column(pair.spread),
            hedge_ratio=np.array([pair.hedge_ratio]),
            intercept=np.array([pair.intercept]),
        )

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
