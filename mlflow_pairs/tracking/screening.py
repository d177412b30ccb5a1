"""Logging a screening result to the active MLflow run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow_pairs.screening import ScreeningResult

__all__ = ["log_screening"]

# mlflow.log_table writes JSON that the UI renders; past this many rows only the CSV.
_TABLE_ROWS = 10_000


def log_screening(result: ScreeningResult, *, artifact_dir: str = "screening") -> None:
    """Params, metrics and the table (CSV, and an MLflow table when small) of ``result``."""
    import mlflow

    criteria = result.criteria
    mlflow.log_params(
        {
            "screening.start": f"{result.start:%Y-%m-%d}",
            "screening.end": f"{result.end:%Y-%m-%d}",
            **{f"screening.{key}": value for key, value in vars(criteria).items()},
        }
    )
    metrics = {
        "pairs_tested": float(result.n_tested),
        "pairs_passed": float(result.n_passed),
        "pairs_selected": float(len(result.selected)),
    }
    if not math.isnan(result.min_pvalue):
        metrics["min_pvalue"] = result.min_pvalue
    mlflow.log_metrics(metrics)
    mlflow.set_tag("mlflow_pairs.screening_summary", result.summary())
    mlflow.log_text(result.table.to_csv(index=False), f"{artifact_dir}/screening.csv")
    if result.n_tested <= _TABLE_ROWS:
        table = result.table.astype({"rank": "float64"})
        mlflow.log_table(table, f"{artifact_dir}/screening.json")
