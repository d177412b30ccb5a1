"""Training progress into MLflow: per-epoch metrics of the sequence part."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["epoch_logger"]


def epoch_logger(prefix: str = "epoch_") -> Callable[[int, dict[str, float]], None]:
    """A callback for ``GarchGruModel.fit(on_epoch=...)`` that logs each epoch's loss,
    validation loss, F1, accuracy, precision, recall and AUC to the active run, with the
    epoch as the step (the MLflow UI draws them as training curves)."""
    import math

    import mlflow

    def log(epoch: int, metrics: dict[str, float]) -> None:
        finite = {f"{prefix}{k}": v for k, v in metrics.items() if not math.isnan(v)}
        mlflow.log_metrics(finite, step=epoch)

    return log
