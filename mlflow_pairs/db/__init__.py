"""Database set-up: the MLflow database, MLflow's schema, and the project's own tables."""

from mlflow_pairs.db._engine import backend_name, make_engine, parse_url
from mlflow_pairs.db.create import create_database
from mlflow_pairs.db.mlflow_schema import SchemaStatus, mlflow_schema_status, upgrade_mlflow_schema
from mlflow_pairs.db.pairs_schema import (
    downgrade_pairs_schema,
    ensure_pairs_schema,
    pairs_schema_status,
    upgrade_pairs_schema,
)

__all__ = [
    "SchemaStatus",
    "backend_name",
    "create_database",
    "downgrade_pairs_schema",
    "ensure_pairs_schema",
    "make_engine",
    "mlflow_schema_status",
    "pairs_schema_status",
    "parse_url",
    "upgrade_mlflow_schema",
    "upgrade_pairs_schema",
]
