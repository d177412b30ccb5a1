"""Prices: sources, validation, alignment and the :class:`PricePanel`."""

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import read_price_file
from mlflow_pairs.data.panel import GapPolicy, PricePanel, build_panel, content_hash
from mlflow_pairs.data.pipeline import combine_panels, load_panel, universe_sectors
from mlflow_pairs.data.sources import PriceSource, Universe

__all__ = [
    "DataError",
    "GapPolicy",
    "PricePanel",
    "PriceSource",
    "Universe",
    "build_panel",
    "combine_panels",
    "content_hash",
    "load_panel",
    "read_price_file",
    "universe_sectors",
]
