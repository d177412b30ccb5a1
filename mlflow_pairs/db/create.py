"""``mlflow-pairs db create``: create the database named in the backend store URI."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy

from mlflow_pairs.db._engine import absolute_sqlite_uri, parse_url, using_engine
from mlflow_pairs.errors import DatabaseError
from mlflow_pairs.secrets import mask_uri

__all__ = ["create_database"]

# The maintenance database every PostgreSQL server has; CREATE DATABASE runs from there.
_MAINTENANCE_DB = "postgres"


def create_database(uri: str, *, timeout: float = 5.0) -> bool:
    """Create the database of ``uri`` unless it exists.

    Returns ``True`` when it was created and ``False`` when it already existed, so running
    it twice is harmless. The SQL it runs is also in ``scripts/create_mlflow_db.sql``.
    """
    url = parse_url(uri)
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = parse_url(absolute_sqlite_uri(uri, create=True)).database
        if not database or database == ":memory:":
            raise DatabaseError("db create needs a SQLite file, not an in-memory database")
        path = Path(database)
        if path.exists():
            return False
        path.touch()
        return True
    if backend != "postgresql":
        raise DatabaseError(f"db create supports PostgreSQL and SQLite, not {backend}")
    name = url.database
    if not name:
        raise DatabaseError(f"no database name in {mask_uri(uri)}")
    admin_uri = url.set(database=_MAINTENANCE_DB).render_as_string(hide_password=False)
    what = f"cannot create database {name!r} on"
    with (
        using_engine(admin_uri, what, timeout=timeout, autocommit=True) as engine,
        engine.connect() as connection,
    ):
        exists = connection.execute(
            sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": name},
        ).scalar()
        if exists:
            return False
        quoted = connection.dialect.identifier_preparer.quote(name)
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {quoted}"))
        return True
