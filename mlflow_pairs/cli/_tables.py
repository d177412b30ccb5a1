"""Writing a run's rows to the project's own tables after MLflow has the run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mlflow_pairs.errors import MlflowPairsError
from mlflow_pairs.secrets import mask_uri, redact


def write_rows(app: Any, connection: Any, write: Callable[[str], dict[str, int]]) -> None:
    """Run ``write(uri)`` against the tables database (``tables.uri``), or the tracking
    server when it serves them. A failure is a warning: the MLflow run already holds
    everything, and rerunning writes the rows again."""
    from mlflow_pairs.db.remote import tables_target

    try:
        uri = tables_target(app.settings, connection.tracking_uri)
        if uri is None:
            return
        counts = write(uri)
    except MlflowPairsError as exc:
        click.echo(
            f"Warning: rows not written to the mlflow-pairs tables: {redact(str(exc))} "
            "(the MLflow run is complete; see `mlflow-pairs db --help`)",
            err=True,
        )
        return
    written = ", ".join(f"{n} to {name}" for name, n in counts.items())
    click.echo(f"Wrote rows ({written}) in {mask_uri(uri)}")
