"""Price panels as MLflow dataset inputs, so the UI shows each run's data lineage."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow_pairs.data import PricePanel

__all__ = ["log_price_panel"]


def log_price_panel(panel: PricePanel, *, context: str = "training") -> None:
    """Log ``panel`` as an input of the active run (digest = the panel's content hash)."""
    from mlflow.data.pandas_dataset import from_pandas

    frame = panel.prices.reset_index()
    name = panel.universe or f"{panel.source}:{panel.source_uri.rsplit('/', 1)[-1]}"
    with warnings.catch_warnings():
        # A local path matches MLflow's local-artifact source twice; it warns and picks it.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        dataset = from_pandas(
            frame, source=panel.source_uri, name=name, digest=panel.content_hash[:32]
        )
    _log_input(dataset, context)


def _log_input(dataset: object, context: str, attempts: int = 5) -> None:
    """``mlflow.log_input``, safe when another process logs the same dataset at once.

    MLflow's SQL store looks a dataset up and inserts it when missing; two runs doing so
    at once make one insert fail on the unique (experiment, name, digest) key. The
    dataset then exists, so trying again links it: a few tries with a short pause.
    """
    import time

    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context=context)  # type: ignore[arg-type]
            return
        except MlflowException as exc:
            text = str(exc)
            duplicate = "UNIQUE constraint failed" in text or "duplicate key value" in text
            if not duplicate or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
