"""``mlflow-pairs config``: inspect the effective configuration."""

from __future__ import annotations

import json

import click
import yaml

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.config import config_hash, masked_settings


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("show")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@pass_app
def show(app: AppContext, fmt: str) -> None:
    """Print the effective configuration, secrets masked."""
    settings = app.settings
    data = masked_settings(settings)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"# source: {settings.source}")
    for key, variable in settings.overrides.items():
        click.echo(f"# {key} from ${variable}")
    click.echo(f"# config hash: {config_hash(settings)}")
    click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
