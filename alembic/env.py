"""Alembic environment of mlflow-pairs' own tables (never MLflow's).

Run through ``mlflow-pairs db upgrade|current|downgrade``, which hands in a connection.
From a checkout, plain alembic works too::

    alembic -x url=postgresql://postgres@localhost/mlflow_db upgrade head
    alembic -x url=sqlite:///mlruns/mlflow.db revision --autogenerate -m "..."

Coexistence with MLflow, which keeps its own alembic history in the same database:

* our version table is ``pairs_alembic_version``, never MLflow's ``alembic_version``;
* on PostgreSQL everything of ours lives in the ``mlflow_pairs`` schema; on SQLite our
  tables carry the ``pairs_`` prefix;
* autogenerate only ever sees our schema and prefixed tables, so MLflow's tables are
  never candidates for a change.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from mlflow_pairs.db.tables import PREFIX, VERSION_TABLE, metadata, schema_for

config = context.config


def _include_name(name: str | None, type_: Any, parent_names: Any) -> bool:
    schema = config.attributes.get("pairs_schema")
    if type_ == "schema":
        return name == schema
    if type_ == "table":
        return name is not None and name.startswith(PREFIX) and name != VERSION_TABLE
    return True


def _run(connection: sa.Connection) -> None:
    schema = schema_for(connection.dialect.name)
    config.attributes["pairs_schema"] = schema
    if schema is not None:
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        target_metadata=metadata(schema),
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=schema is not None,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database: alembic -x url=URI ...")
    return url


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported; run against a database")

given = config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    engine = sa.create_engine(_url(), poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()
