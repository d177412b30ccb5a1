"""The spread part: hedge ratio, intercept and the spread's formation statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = ["SpreadPart"]


@dataclass(frozen=True)
class SpreadPart:
    """One pair's spread ``log y - hedge_ratio * log x - intercept`` and its scale.

    Attributes
    ----------
    y, x : str
        The symbols of the dependent and the independent leg.
    hedge_ratio, intercept : float
        OLS of log(y) on a constant and log(x) over the fitting window.
    mean, std : float
        Mean and standard deviation of the spread over the fitting window; the z-score
        is ``(spread - mean) / std``.
    """

    y: str
    x: str
    hedge_ratio: float
    intercept: float
    mean: float
    std: float

    @property
    def name(self) -> str:
        return f"{self.y}/{self.x}"

    @classmethod
    def fit(cls, prices: pd.DataFrame, y: str, x: str) -> SpreadPart:
        """Fit on ``prices`` (the training window only)."""
        ly, lx = np.log(prices[y].to_numpy()), np.log(prices[x].to_numpy())
        slope, intercept = np.polyfit(lx, ly, 1)
        spread = ly - slope * lx - intercept
        std = float(spread.std(ddof=1))
        if not np.isfinite(std) or std == 0:
            raise ValueError(f"pair {y}/{x}: the spread is constant over the fitting window")
        return cls(y, x, float(slope), float(intercept), float(spread.mean()), std)

    def spread(self, prices: pd.DataFrame) -> pd.Series:
        """The spread on the dates of ``prices``."""
        values = np.log(prices[self.y]) - self.hedge_ratio * np.log(prices[self.x]) - self.intercept
        return values.rename(self.name)

    def zscore(self, spread: pd.Series) -> pd.Series:
        return (spread - self.mean) / self.std

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SpreadPart:
        return cls(**data)  # type: ignore[arg-type]
