"""Prices: sources, validation, alignment and the :class:`PricePanel`."""

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import read_price_file
from mlflow_pairs.data.panel import GapPolicy, PricePanel, build_panel, content_hash
from mlflow_pairs.data.pipeline import load_panel
from mlflow_pairs.data.sources import PriceSource, Universe

__all__ = [
    "DataError",
    "GapPolicy",
    "PricePanel",
    "PriceSource",
    "Universe",
    "build_panel",
    "content_hash",
    "load_panel",
    "read_price_file",
]
