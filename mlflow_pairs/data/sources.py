"""What plugins provide: universes of symbols and the sources that load their prices."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["PriceSource", "Universe"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-.]*$")


@dataclass(frozen=True)
class Universe:
    """A named set of symbols of one sector and the price source that loads them.

    Parameters
    ----------
    name : str
        Unique across plugins; lower case letters, digits, ``_``, ``-`` and ``.``.
    sector : str
        The GICS sector, as a configuration name (``technology``, ``energy``...).
    symbols : sequence of str
        The tickers, at least one, without duplicates.
    price_source : str
        Name of a registered :class:`PriceSource`.
    description : str
        One line shown by ``universes list``.
    """

    name: str
    sector: str
    symbols: tuple[str, ...]
    price_source: str
    description: str = ""
    plugin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"universe name {self.name!r} must match {_NAME.pattern}")
        symbols = tuple(self.symbols)
        if not symbols:
            raise ValueError(f"universe {self.name!r} has no symbols")
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"universe {self.name!r} lists {', '.join(duplicates)} twice")
        object.__setattr__(self, "symbols", symbols)


class PriceSource(ABC):
    """Loads daily prices for symbols and dates.

    Subclasses set ``name`` (unique across plugins) and ``description`` and implement
    :meth:`load`. Sources that read a user's file get its path as ``location``.
    """

    name: str = ""
    description: str = ""

    @abstractmethod
    def load(
        self,
        symbols: Sequence[str] | None,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        location: str | None = None,
    ) -> pd.DataFrame:
        """Prices of ``symbols`` (all the source has when ``None``) from ``start`` to ``end``.

        Returns
        -------
        DataFrame of shape (n_dates, n_symbols)
            A DatetimeIndex of trading dates and one column of prices per symbol. The
            host validates the result (dates, values, requested symbols), so a source may
            return what it has and leave the checks to the host.
        """

    def uri(self, location: str | None = None) -> str:
        """Where the prices come from, for lineage (an MLflow dataset's source)."""
        return location or f"mlflow-pairs:{self.name}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
