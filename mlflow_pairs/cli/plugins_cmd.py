"""``mlflow-pairs plugins``, ``universes`` and ``data``: what plugins provide."""

from __future__ import annotations

import json

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.cli._options import data_options, panel_from_options


@click.group("plugins")
def plugins_group() -> None:
    """Installed plugins (entry-point group mlflow_pairs)."""


@plugins_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_list(as_json: bool) -> None:
    """Name, version and hooks of every plugin, built-ins included."""
    from mlflow_pairs.plugins import list_plugins

    infos = list_plugins()
    if as_json:
        click.echo(json.dumps([info.__dict__ for info in infos], indent=2))
        return
    for info in infos:
        origin = "built-in" if info.builtin else f"{info.distribution} {info.version}"
        state = f"FAILED: {info.error}" if info.error else ", ".join(info.hooks)
        click.echo(f"{info.name}  ({origin})  {state}")


@click.group("universes")
def universes_group() -> None:
    """Stock universes registered by plugins."""


@universes_group.command("list")
def universes_list() -> None:
    """Every registered universe: name, sector, symbols, price source, plugin."""
    from mlflow_pairs.plugins import get_universes

    universes = sorted(get_universes().values(), key=lambda u: (u.sector, u.name))
    if not universes:
        click.echo("No universes registered.")
        return
    width = max(len(u.name) for u in universes)
    for u in universes:
        click.echo(
            f"{u.name:<{width}}  {u.sector:<22}  {len(u.symbols):>3} symbols  "
            f"source={u.price_source}  plugin={u.plugin}"
        )


@universes_group.command("show")
@click.argument("name")
def universes_show(name: str) -> None:
    """Details of universe NAME."""
    from mlflow_pairs.plugins import get_universe

    u = get_universe(name)
    click.echo(f"name:         {u.name}")
    click.echo(f"sector:       {u.sector}")
    click.echo(f"symbols:      {', '.join(u.symbols)}")
    click.echo(f"price source: {u.price_source}")
    click.echo(f"plugin:       {u.plugin}")
    click.echo(f"description:  {u.description}")


@click.group("data")
def data_group() -> None:
    """Load and validate price data."""


@data_group.command("check")
@data_options
@click.option(
    "--min-observations",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Fewest dates the panel must have.",
)
@pass_app
def data_check(app: AppContext, /, min_observations: int, **options: object) -> None:
    """Load, validate and align prices; print what was loaded and its content hash."""
    loaded = panel_from_options(app.settings, min_observations=min_observations, **options)  # type: ignore[arg-type]
    panel = loaded.panel
    for key, value in panel.describe().items():
        click.echo(f"{key + ':':<14}{value}")
