"""The validated, aligned price panel every later stage starts from."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.validation import (
    check_date_index,
    check_enough_observations,
    check_no_missing,
    check_numeric,
    check_positive_finite,
    check_range,
    check_symbols,
)

__all__ = ["GapPolicy", "PricePanel", "build_panel", "content_hash"]


@dataclass(frozen=True)
class GapPolicy:
    """How dates on which some symbols have no price are handled.

    ``ffill`` carries the last price forward over at most ``max_days`` consecutive missing
    dates (a longer gap is an error naming the symbol and dates); ``drop`` removes every
    date on which any symbol is missing, so all symbols share one calendar.
    """

    method: Literal["ffill", "drop"] = "ffill"
    max_days: int = 3

    def __post_init__(self) -> None:
        if self.method not in ("ffill", "drop"):
            raise ValueError(f"gap policy method must be 'ffill' or 'drop', not {self.method!r}")
        if self.max_days < 0:
            raise ValueError("gap policy max_days must be >= 0")

    def __str__(self) -> str:
        return f"ffill({self.max_days})" if self.method == "ffill" else "drop"

    def apply(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """The aligned frame and how many cells (ffill) or dates (drop) were touched."""
        if self.method == "drop":
            kept = frame.dropna(how="any")
            return kept, len(frame) - len(kept)
        filled = frame.ffill(limit=self.max_days) if self.max_days else frame
        return filled, int(frame.isna().sum().sum() - filled.isna().sum().sum())


@dataclass(frozen=True)
class PricePanel:
    """Aligned daily prices with their provenance.

    Attributes
    ----------
    prices : DataFrame of shape (n_observations, n_symbols)
        Positive float prices on a common DatetimeIndex, no missing values.
    source : str
        Name of the price source that loaded them.
    source_uri : str
        Where the prices came from (a file path, or ``mlflow-pairs:NAME``).
    universe : str or None
        The universe they were loaded for, if any.
    gap_policy : GapPolicy
        How gaps were handled; ``gaps_handled`` says how many cells or dates it touched.
    content_hash : str
        SHA-256 of the dates, symbols and values: equal panels, equal hashes.
    """

    prices: pd.DataFrame
    source: str
    source_uri: str
    universe: str | None
    gap_policy: GapPolicy
    gaps_handled: int
    content_hash: str

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(str(c) for c in self.prices.columns)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.prices.index[0])

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.prices.index[-1])

    @property
    def n_observations(self) -> int:
        return len(self.prices)

    @property
    def log_prices(self) -> pd.DataFrame:
        """Natural logarithm of the prices, same shape."""
        return np.log(self.prices)

    def describe(self) -> dict[str, str | int]:
        """Provenance as flat values (for params, tags and the command line)."""
        return {
            "source": self.source,
            "source_uri": self.source_uri,
            "universe": self.universe or "",
            "symbols": ",".join(self.symbols),
            "start": f"{self.start:%Y-%m-%d}",
            "end": f"{self.end:%Y-%m-%d}",
            "observations": self.n_observations,
            "gap_policy": str(self.gap_policy),
            "gaps_handled": self.gaps_handled,
            "content_hash": self.content_hash,
        }


def content_hash(prices: pd.DataFrame) -> str:
    """SHA-256 over the symbols, the dates (ns since epoch) and the float64 values."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, prices.columns)).encode("utf-8"))
    digest.update(np.asarray(prices.index.asi8, dtype="<i8").tobytes())
    digest.update(np.ascontiguousarray(prices.to_numpy(dtype="<f8")).tobytes())
    return digest.hexdigest()


def build_panel(
    raw: pd.DataFrame,
    *,
    source: str,
    source_uri: str,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    gap_policy: GapPolicy | None = None,
    min_observations: int = 1,
    universe: str | None = None,
) -> PricePanel:
    """Validate and align a wide price table into a :class:`PricePanel`.

    Parameters
    ----------
    raw : DataFrame of shape (n_dates, n_symbols)
        What a price source returned: a DatetimeIndex and one column per symbol.
    symbols : sequence of str, optional
        The symbols wanted, in order; all columns when omitted.
    start, end : date-like, optional
        Inclusive date range.
    min_observations : int
        The fewest dates the requested windows need.

    Raises
    ------
    DataError
        Naming the rule, the symbol(s) and the date(s) (see :mod:`.validation`).
    """
    origin = f"price source '{source}'" + (f" ({source_uri})" if source_uri else "")
    policy = gap_policy or GapPolicy()
    start_ts = pd.Timestamp(start) if start is not None else None
    end_ts = pd.Timestamp(end) if end is not None else None
    check_date_index(raw, origin)
    frame = check_symbols(raw, symbols, origin)
    frame = check_numeric(frame, origin)
    frame = check_range(frame, start_ts, end_ts, origin)
    check_positive_finite(frame, origin)
    aligned, touched = policy.apply(frame)
    check_no_missing(aligned, origin, str(policy))
    check_enough_observations(aligned, min_observations, origin)
    aligned = aligned.copy()
    aligned.columns = [str(c) for c in aligned.columns]
    aligned.index.name = "date"
    return PricePanel(
        prices=aligned,
        source=source,
        source_uri=source_uri,
        universe=universe,
        gap_policy=policy,
        gaps_handled=touched,
        content_hash=content_hash(aligned),
    )


def combine_panels(panels: Sequence[PricePanel]) -> PricePanel:
    """Several panels side by side on their common dates (a symbol keeps its first column)."""
    if len(panels) == 1:
        return panels[0]
    frames = []
    seen: set[str] = set()
    for panel in panels:
        fresh = [s for s in panel.symbols if s not in seen]
        seen.update(fresh)
        frames.append(panel.prices[fresh])
    prices = pd.concat(frames, axis=1, join="inner")
    if prices.empty:
        raise DataError("empty-range", "the universes share no trading dates", symbols=sorted(seen))
    first = panels[0]
    return PricePanel(
        prices=prices,
        source="+".join(dict.fromkeys(p.source for p in panels)),
        source_uri=" ".join(dict.fromkeys(p.source_uri for p in panels)),
        universe=",".join(p.universe or p.source for p in panels),
        gap_policy=first.gap_policy,
        gaps_handled=sum(p.gaps_handled for p in panels),
        content_hash=content_hash(prices),
    )
