"""``mlflow-pairs db``: the database, MLflow's schema and the project's own tables."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.config import backend_store_uri
from mlflow_pairs.db import (
    create_database,
    downgrade_pairs_schema,
    mlflow_schema_status,
    pairs_schema_status,
    parse_url,
    upgrade_mlflow_schema,
    upgrade_pairs_schema,
)
from mlflow_pairs.secrets import mask_uri, register_secret, register_uri_password


def _uri_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--uri",
        default=None,
        metavar="URI",
        help="Database to act on [default: mlflow.backend_store_uri], e.g. "
        "sqlite:///mlruns/mlflow.db for the embedded store.",
    )(command)


def _target(app: AppContext, uri: str | None) -> str:
    from mlflow_pairs._uris import normalise_store_uri

    if uri:
        register_uri_password(uri)  # as typed too: it may hold an unencoded space or '@'
        password = parse_url(uri).password
        if password:
            register_secret(str(password))
        return normalise_store_uri(uri)
    return normalise_store_uri(backend_store_uri(app.settings))


@click.group("db")
def db_group() -> None:
    """The database of MLflow's backend store: MLflow's schema and mlflow-pairs' tables.

    mlflow-pairs keeps its own tables (screening results, pair-level performance) beside
    MLflow's, migrated with alembic under their own version table (pairs_alembic_version;
    on PostgreSQL in the mlflow_pairs schema). MLflow's schema is never downgraded.
    """


@db_group.command("create")
@_uri_option
@pass_app
def create(app: AppContext, uri: str | None) -> None:
    """Create the database named in mlflow.backend_store_uri (no-op if it exists)."""
    target = _target(app, uri)
    name = parse_url(target).database
    if create_database(target):
        click.echo(f"Created database {name} on {mask_uri(target)}")
    else:
        click.echo(f"Database {name} already exists on {mask_uri(target)}; nothing to do")


@db_group.command("upgrade")
@_uri_option
@click.option(
    "--only",
    type=click.Choice(["mlflow", "pairs"]),
    default=None,
    help="Upgrade only MLflow's schema or only mlflow-pairs' tables.",
)
@pass_app
def upgrade(app: AppContext, uri: str | None, only: str | None) -> None:
    """Bring MLflow's schema and mlflow-pairs' tables up to date (idempotent)."""
    target = _target(app, uri)
    if only != "pairs":
        status = upgrade_mlflow_schema(target)
        click.echo(f"MLflow schema of {mask_uri(target)} at revision {status.current} (head)")
    if only != "mlflow":
        ours = upgrade_pairs_schema(target)
        click.echo(f"mlflow-pairs tables of {mask_uri(target)} at revision {ours.current} (head)")


@db_group.command("current")
@_uri_option
@pass_app
def current(app: AppContext, uri: str | None) -> None:
    """Show the revisions of MLflow's schema and mlflow-pairs' tables."""
    target = _target(app, uri)
    click.echo(f"database: {mask_uri(target)}")
    for label, status in (
        ("MLflow schema", mlflow_schema_status(target)),
        ("mlflow-pairs tables", pairs_schema_status(target)),
    ):
        if status.current is None:
            state = "not created"
        elif status.is_current:
            state = "head"
        else:
            state = f"behind head {status.head}: run `mlflow-pairs db upgrade`"
        click.echo(f"{label + ':':21s} {status.current or '-'} ({state})")


# ignore_unknown_options: a relative revision such as -1 is an argument, not an option.
@db_group.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision")
@_uri_option
@pass_app
def downgrade(app: AppContext, revision: str, uri: str | None) -> None:
    """Downgrade mlflow-pairs' tables to REVISION (a revision id, -1, or base).

    base removes every object of ours (tables, version table, schema) and nothing of
    MLflow's. Rows in dropped tables are lost.
    """
    target = _target(app, uri)
    status = downgrade_pairs_schema(target, revision)
    where = f"revision {status.current}" if status.current else "base (none of our tables left)"
    click.echo(f"mlflow-pairs tables of {mask_uri(target)} at {where}")
