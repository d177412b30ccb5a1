"""Reading the project's tables back in tests: what a run, the server or a migration
wrote, as a DataFrame."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa

from mlflow_pairs.db._engine import absolute_sqlite_uri, using_engine
from mlflow_pairs.db.tables import (
    model_performance,
    schema_for,
    screening_results,
    variance_stability,
)
from mlflow_pairs.errors import DatabaseError


def read_table(
    uri: str, name: str, *, where: Mapping[str, Any] | None = None, timeout: float = 10.0
) -> pd.DataFrame:
    """Rows of one of our tables (``screening_results``, ``model_performance``,
    ``variance_stability``), optionally filtered by column equality."""
    tables = {
        "screening_results": screening_results,
        "model_performance": model_performance,
        "variance_stability": variance_stability,
    }
    if name not in tables:
        raise DatabaseError(f"no mlflow-pairs table {name!r} (tables: {', '.join(tables)})")
    what = "cannot read mlflow-pairs tables in"
    with (
        using_engine(absolute_sqlite_uri(uri), what, timeout=timeout) as engine,
        engine.connect() as connection,
    ):
        table = tables[name](schema_for(connection.dialect.name))
        query = sa.select(table).order_by(table.c.id)
        for column, value in (where or {}).items():
            query = query.where(table.c[column] == value)
        return pd.DataFrame(connection.execute(query).mappings().all())
