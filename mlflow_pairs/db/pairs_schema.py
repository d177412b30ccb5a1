"""The project's own schema: alembic migrations run beside MLflow's, never on them.

Our history has its own version table (``pairs_alembic_version``) and, on PostgreSQL, its
own schema, so ``mlflow db upgrade`` and ours can run in either order. Migrations hold
:func:`~mlflow_pairs.db._lock.migration_lock`, so processes that create the tables at the
same time do not trip over each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from mlflow_pairs.db._engine import absolute_sqlite_uri, using_engine
from mlflow_pairs.db._lock import migration_lock
from mlflow_pairs.db.mlflow_schema import SchemaStatus
from mlflow_pairs.db.tables import VERSION_TABLE, schema_for
from mlflow_pairs.errors import DatabaseError
from mlflow_pairs.secrets import mask_uri

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "check_pairs_schema",
    "downgrade_pairs_schema",
    "ensure_pairs_schema",
    "migrations_dir",
    "pairs_schema_status",
    "upgrade_pairs_schema",
]


def migrations_dir() -> Path:
    """The alembic scripts (``alembic/`` in a checkout, packaged in the wheel)."""
    return Path(__file__).resolve().with_name("migrations").resolve()


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def _head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise DatabaseError(f"no alembic revision found in {migrations_dir()}")
    return head


def _revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    return [s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()][::-1]


def _current(connection: sa.Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        connection,
        opts={
            "version_table": VERSION_TABLE,
            "version_table_schema": schema_for(connection.dialect.name),
        },
    )
    return context.get_current_revision()


@contextlib.contextmanager
def _connection(uri: str, *, timeout: float, lock: bool) -> Iterator[sa.Connection]:
    """One transaction on ``uri``; with ``lock``, serialised against other migrators."""
    uri = absolute_sqlite_uri(uri)
    with (
        using_engine(uri, "mlflow-pairs tables in", timeout=timeout) as engine,
        contextlib.ExitStack() as stack,
    ):
        if lock:
            stack.enter_context(migration_lock(uri, timeout=timeout))
        yield stack.enter_context(engine.begin())


def _run(command: str, connection: sa.Connection, revision: str) -> None:
    from alembic import command as commands
    from alembic.util import CommandError

    config = _config()
    config.attributes["connection"] = connection
    try:
        getattr(commands, command)(config, revision)
    except CommandError as exc:
        known = ", ".join(["base", *_revisions(), "head"])
        raise DatabaseError(
            f"cannot {command} mlflow-pairs tables to {revision!r}: {exc} (revisions: {known})"
        ) from None


def pairs_schema_status(uri: str, *, timeout: float = 5.0) -> SchemaStatus:
    """Read our version table in the database of ``uri`` (``current`` is None when absent)."""
    with _connection(uri, timeout=timeout, lock=False) as connection:
        return SchemaStatus(current=_current(connection), head=_head())


def upgrade_pairs_schema(
    uri: str, revision: str = "head", *, timeout: float = 10.0
) -> SchemaStatus:
    """Create or upgrade our tables (idempotent: at ``revision`` already, nothing runs)."""
    with _connection(uri, timeout=timeout, lock=True) as connection:
        _run("upgrade", connection, revision)
        return SchemaStatus(current=_current(connection), head=_head())


def downgrade_pairs_schema(uri: str, revision: str, *, timeout: float = 10.0) -> SchemaStatus:
    """Downgrade our tables to ``revision``. At ``base`` nothing of ours is left: the
    version table and (on PostgreSQL) the empty schema go too. MLflow's tables are never
    touched."""
    with _connection(uri, timeout=timeout, lock=True) as connection:
        _run("downgrade", connection, revision)
        current = _current(connection)
        if current is None:
            schema = schema_for(connection.dialect.name)
            version_table = sa.Table(VERSION_TABLE, sa.MetaData(schema=schema))
            version_table.drop(connection, checkfirst=True)
            if schema is not None:
                # Without CASCADE: fails rather than drop anything someone else put there.
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}"'))
        return SchemaStatus(current=current, head=_head())


def check_pairs_schema(uri: str, *, timeout: float = 10.0) -> None:
    """Raise :class:`DatabaseError` listing the differences when the tables in ``uri``
    (at head) differ from :func:`mlflow_pairs.db.tables.metadata` (alembic's
    autogenerate comparison, which sees only our schema and prefixed tables)."""
    from alembic import command as commands
    from alembic.util import AutogenerateDiffsDetected

    with _connection(uri, timeout=timeout, lock=False) as connection:
        config = _config()
        config.attributes["connection"] = connection
        try:
            commands.check(config)
        except AutogenerateDiffsDetected as exc:
            raise DatabaseError(f"mlflow-pairs tables differ from the models: {exc}") from None


def ensure_pairs_schema(uri: str, *, create: bool = True, timeout: float = 10.0) -> SchemaStatus:
    """Create our tables in a database that has none of them (as MLflow does for its own;
    with ``create=False`` such a database is returned as it is, ``current`` None). A
    database at an older revision is an error: it is left for ``mlflow-pairs db upgrade``."""
    status = pairs_schema_status(uri, timeout=timeout)
    if status.current is None and create:
        status = upgrade_pairs_schema(uri, timeout=timeout)
    if status.current is not None and not status.is_current:
        raise DatabaseError(
            f"mlflow-pairs tables in {mask_uri(uri)} are at revision {status.current}, this "
            f"version needs {status.head}: run `mlflow-pairs db upgrade`"
        )
    return status
