"""The bundled sample: daily adjusted closes of 20 S&P 500 stocks, 1990-01-02 to 2022-12-28.

From the skfolio package (BSD-3-Clause, see ``data/LICENSE-skfolio.txt``); survivor-biased
(today's constituents), prices rounded to 3 decimals: for demos and tests, not research.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from mlflow_pairs.data.sources import PriceSource, Universe
from mlflow_pairs.hookspecs import hookimpl

SAMPLE_FILE = "sp500_20_daily.csv.gz"

#: GICS sectors of the sample's tickers.
SAMPLE_SECTORS: dict[str, tuple[str, ...]] = {
    "technology": ("AAPL", "AMD", "MSFT"),
    "energy": ("CVX", "XOM", "RRC"),
    "financials": ("BAC", "JPM"),
    "health_care": ("JNJ", "LLY", "MRK", "PFE", "UNH"),
    "consumer_staples": ("KO", "PEP", "PG", "WMT"),
    "consumer_discretionary": ("BBY", "HD"),
    "industrials": ("GE",),
}


def sample_path() -> Path:
    """The bundled CSV file inside the installed package."""
    return Path(str(resources.files("mlflow_pairs.default_plugins") / "data" / SAMPLE_FILE))


@functools.lru_cache(maxsize=1)
def _read_sample() -> pd.DataFrame:
    frame = pd.read_csv(sample_path(), index_col="Date", parse_dates=["Date"])
    frame.index.name = "date"
    return frame.astype("float64")


class SamplePrices(PriceSource):
    """The bundled sample prices (20 S&P 500 stocks, 1990-2022)."""

    name = "sample"
    description = "Bundled daily prices of 20 S&P 500 stocks, 1990-2022 (skfolio, BSD-3)"

    def load(
        self,
        symbols: Sequence[str] | None,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        location: str | None = None,
    ) -> pd.DataFrame:
        frame = _read_sample()
        if symbols is not None:
            frame = frame[[s for s in symbols if s in frame.columns]]
        # The whole history: the host selects the dates and can say what the sample covers.
        return frame.copy()

    def uri(self, location: str | None = None) -> str:
        return str(sample_path())


@hookimpl
def register_price_sources(register: Callable[[PriceSource], None]) -> None:
    register(SamplePrices())


@hookimpl
def register_universes(register: Callable[[Universe], None]) -> None:
    for sector, symbols in SAMPLE_SECTORS.items():
        register(
            Universe(
                name=f"sample-{sector}",
                sector=sector,
                symbols=symbols,
                price_source="sample",
                description=f"Sample {sector.replace('_', ' ')} stocks: {', '.join(symbols)}",
            )
        )
