"""MLflow's own schema: the one place that calls MLflow's private migration helpers.

``mlflow db upgrade`` has no public Python API; these wrappers mirror what that command
does, so an MLflow upgrade that moves the helpers breaks this module only.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy

from mlflow_pairs.db._engine import absolute_sqlite_uri, using_engine

__all__ = ["SchemaStatus", "ensure_mlflow_schema", "mlflow_schema_status", "upgrade_mlflow_schema"]


@dataclass(frozen=True)
class SchemaStatus:
    """A schema's revision in a database (``None``: not created) and the head revision
    this installation expects: MLflow's schema or the project's own tables."""

    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def upgrade_mlflow_schema(uri: str, *, timeout: float = 10.0) -> SchemaStatus:
    """Create or upgrade MLflow's tables in the database of ``uri`` (idempotent)."""
    from mlflow.store.db import utils as db_utils

    uri = absolute_sqlite_uri(uri)
    with using_engine(uri, "cannot upgrade MLflow's schema in", timeout=timeout) as engine:
        if _has_no_mlflow_tables(engine):
            db_utils._initialize_tables(engine)
        else:
            db_utils._upgrade_db(engine)
    return mlflow_schema_status(uri, timeout=timeout)


def ensure_mlflow_schema(uri: str, *, timeout: float = 10.0) -> None:
    """Create MLflow's tables in a database that has none, under the migration lock.

    MLflow creates them itself on first use, but its model-registry store does so without
    a lock, so two processes opening a fresh database at once can fail; doing it here
    first, serialised, avoids that. A database with MLflow's tables (current or not) is
    left to MLflow.
    """
    from mlflow.store.db import utils as db_utils

    from mlflow_pairs.db._lock import migration_lock

    uri = absolute_sqlite_uri(uri)
    with using_engine(uri, "cannot create MLflow's schema in", timeout=timeout) as engine:
        if db_utils._all_tables_exist(engine):
            return
        # Decided under the lock: outside it, another process may be half-way through.
        with migration_lock(uri, timeout=timeout):
            if _has_no_mlflow_tables(engine):
                db_utils._initialize_tables(engine)


def _has_no_mlflow_tables(engine: sqlalchemy.Engine) -> bool:
    """MLflow's own test (``_is_empty_database``) counts every table; ours (``pairs_``,
    on SQLite in the same namespace) must not make a database look initialised."""
    from mlflow_pairs.db.tables import PREFIX

    names = sqlalchemy.inspect(engine).get_table_names()
    return all(name.startswith(("alembic_", PREFIX)) for name in names)


def mlflow_schema_status(uri: str, *, timeout: float = 5.0) -> SchemaStatus:
    """Read MLflow's ``alembic_version`` in the database of ``uri``."""
    from mlflow.store.db import utils as db_utils

    what = "cannot read MLflow's schema version in"
    with using_engine(absolute_sqlite_uri(uri), what, timeout=timeout) as engine:
        current = db_utils._get_schema_version(engine)
    return SchemaStatus(current=current, head=db_utils._get_latest_schema_revision())
