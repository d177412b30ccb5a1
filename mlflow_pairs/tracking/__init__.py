"""Everything that talks to MLflow: the connection manager and the tracking server."""

from mlflow_pairs.tracking.connection import TAG_PREFIX, MlflowConnection

__all__ = ["TAG_PREFIX", "MlflowConnection"]
