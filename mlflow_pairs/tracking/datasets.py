"""Price panels as MLflow dataset inputs, so the UI shows each run's data lineage."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow_pairs.data import PricePanel

__all__ = ["log_price_panel"]


def log_price_panel(panel: PricePanel, *, context: str = "training") -> None:
    """Log ``panel`` as an input of the active run (digest = the panel's content hash)."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas

    frame = panel.prices.reset_index()
    name = panel.universe or f"{panel.source}:{panel.source_uri.rsplit('/', 1)[-1]}"
    with warnings.catch_warnings():
        # A local path matches MLflow's local-artifact source twice; it warns and picks it.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        dataset = from_pandas(
            frame, source=panel.source_uri, name=name, digest=panel.content_hash[:32]
        )
    mlflow.log_input(dataset, context=context)
