"""The ``csv`` and ``parquet`` price sources behind ``--prices FILE``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import read_price_file
from mlflow_pairs.data.sources import PriceSource
from mlflow_pairs.hookspecs import hookimpl


class _FilePrices(PriceSource):
    file_format = ""

    def load(
        self,
        symbols: Sequence[str] | None,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        location: str | None = None,
    ) -> pd.DataFrame:
        if not location:
            raise DataError("file", f"price source '{self.name}' needs a file (--prices FILE)")
        return read_price_file(location, self.file_format)

    def uri(self, location: str | None = None) -> str:
        return str(Path(location).resolve()) if location else f"mlflow-pairs:{self.name}"


class CsvPrices(_FilePrices):
    """A CSV file (optionally gzip-compressed), wide or long."""

    name = "csv"
    description = "CSV file, wide (date + one column per symbol) or long (date, symbol, price)"
    file_format = "csv"


class ParquetPrices(_FilePrices):
    """A Parquet file, wide or long."""

    name = "parquet"
    description = "Parquet file, wide (date + one column per symbol) or long (date, symbol, price)"
    file_format = "parquet"


@hookimpl
def register_price_sources(register: Callable[[PriceSource], None]) -> None:
    register(CsvPrices())
    register(ParquetPrices())
