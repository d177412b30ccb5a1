"""Prices: the sources' contract, validation, alignment and the :class:`PricePanel`
(pure; loading a universe by name is :func:`mlflow_pairs.jobs.load_panel`)."""

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import read_price_file
from mlflow_pairs.data.panel import (
    GapPolicy,
    PricePanel,
    build_panel,
    combine_panels,
    content_hash,
)
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
    "read_price_file",
]
