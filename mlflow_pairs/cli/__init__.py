"""The ``mlflow-pairs`` command line: a thin layer over the package's modules."""

from __future__ import annotations

import sys

import click

from mlflow_pairs import __version__
from mlflow_pairs.cli._app import AppContext, PairsGroup, configure_logging
from mlflow_pairs.cli.config_cmd import config_group
from mlflow_pairs.cli.db_cmd import db_group
from mlflow_pairs.cli.doctor_cmd import doctor
from mlflow_pairs.cli.models_cmd import backtest, models_group, promote
from mlflow_pairs.cli.plugins_cmd import data_group, plugins_group, universes_group
from mlflow_pairs.cli.report_cmd import report_group
from mlflow_pairs.cli.runs_cmd import runs_group
from mlflow_pairs.cli.screen_cmd import screen
from mlflow_pairs.cli.server_cmd import server
from mlflow_pairs.cli.train_cmd import train

__all__ = ["cli", "main"]


@click.group(cls=PairsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlflow-pairs")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    envvar="MLFLOW_PAIRS_CONFIG",
    show_envvar=True,
    help="Configuration file [default: ./config/config.yaml, else the packaged one].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Pairs trading on MLflow: screening, GARCH-GRU models, backtests."""
    configure_logging(debug)
    ctx.obj = AppContext(config_path=config_path, debug=debug)


cli.add_command(config_group)
cli.add_command(db_group)
cli.add_command(doctor)
cli.add_command(server)
cli.add_command(plugins_group)
cli.add_command(universes_group)
cli.add_command(data_group)
cli.add_command(screen)
cli.add_command(train)
cli.add_command(backtest)
cli.add_command(models_group)
cli.add_command(promote)
cli.add_command(report_group)
cli.add_command(runs_group)


def main() -> None:
    """Console-script entry point."""
    from dotenv import load_dotenv

    # MLflow's own variables (credentials, URIs) may live in .env too.
    try:
        load_dotenv(".env", override=False)
    except (UnicodeDecodeError, OSError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else exc.strerror
        click.echo(f"Error: .env: cannot be read as UTF-8 text ({reason})", err=True)
        sys.exit(2)
    configure_logging(debug="--debug" in sys.argv[1:])
    from mlflow_pairs.plugins import register_commands

    register_commands(cli)
    # A reader that goes away (`... | head`) ends the command quietly: click handles the
    # broken pipe (exit 1, no traceback) once PairsGroup lets it through.
    cli(prog_name="mlflow-pairs")
