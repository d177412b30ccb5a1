"""``mlflow-pairs db``: the MLflow database and its schema."""

from __future__ import annotations

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.config import backend_store_uri
from mlflow_pairs.db import create_database, parse_url, upgrade_mlflow_schema
from mlflow_pairs.secrets import mask_uri


@click.group("db")
def db_group() -> None:
    """Create and upgrade the database of MLflow's backend store (mlflow.backend_store_uri)."""


@db_group.command("create")
@pass_app
def create(app: AppContext) -> None:
    """Create the database named in mlflow.backend_store_uri (no-op if it exists)."""
    uri = backend_store_uri(app.settings)
    name = parse_url(uri).database
    if create_database(uri):
        click.echo(f"Created database {name} on {mask_uri(uri)}")
    else:
        click.echo(f"Database {name} already exists on {mask_uri(uri)}; nothing to do")


@db_group.command("upgrade")
@pass_app
def upgrade(app: AppContext) -> None:
    """Bring MLflow's schema in mlflow.backend_store_uri up to date (idempotent)."""
    uri = backend_store_uri(app.settings)
    status = upgrade_mlflow_schema(uri)
    click.echo(f"MLflow schema of {mask_uri(uri)} at revision {status.current} (head)")
