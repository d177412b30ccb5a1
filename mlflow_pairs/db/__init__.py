"""Database set-up: creating the MLflow database and keeping MLflow's schema current."""

from mlflow_pairs.db._engine import backend_name, make_engine, parse_url
from mlflow_pairs.db.create import create_database
from mlflow_pairs.db.mlflow_schema import SchemaStatus, mlflow_schema_status, upgrade_mlflow_schema

__all__ = [
    "SchemaStatus",
    "backend_name",
    "create_database",
    "make_engine",
    "mlflow_schema_status",
    "parse_url",
    "upgrade_mlflow_schema",
]
