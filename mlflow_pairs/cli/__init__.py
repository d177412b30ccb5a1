"""The ``mlflow-pairs`` command line: a thin layer over the package's modules."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from mlflow_pairs import __version__
from mlflow_pairs.cli._app import AppContext, PairsGroup, configure_logging

__all__ = ["cli", "main"]

#: The built-in commands, as ``module:attribute`` under ``mlflow_pairs.cli``, in the
#: order they are listed. A command's module (and the libraries it needs) is imported
#: when the command is used, so ``mlflow-pairs screen`` does not pay for ``train``.
_COMMANDS = {
    "config": "config_cmd:config_group",
    "db": "db_cmd:db_group",
    "doctor": "doctor_cmd:doctor",
    "server": "server_cmd:server",
    "plugins": "plugins_cmd:plugins_group",
    "universes": "plugins_cmd:universes_group",
    "data": "plugins_cmd:data_group",
    "screen": "screen_cmd:screen",
    "train": "train_cmd:train",
    "backtest": "models_cmd:backtest",
    "score": "score_cmd:score",
    "models": "models_cmd:models_group",
    "promote": "models_cmd:promote",
    "report": "report_cmd:report_group",
    "runs": "runs_cmd:runs_group",
}


class _LazyCommands(dict[str, click.Command]):
    """The group's ``name -> command`` mapping; a built-in command is imported on first
    lookup, and all of them when the mapping is listed (``--help``)."""

    def __init__(self, paths: dict[str, str]) -> None:
        super().__init__()
        self._paths = dict(paths)

    def _load(self, name: str) -> None:
        path = self._paths.pop(name, None)
        if path is not None:
            module, attribute = path.split(":")
            command = getattr(importlib.import_module(f"mlflow_pairs.cli.{module}"), attribute)
            dict.__setitem__(self, name, command)

    def _load_all(self) -> None:
        for name in list(self._paths):
            self._load(name)

    def __getitem__(self, name: str) -> Any:
        self._load(name)
        return super().__getitem__(name)

    def get(self, name: str, default: Any = None) -> Any:
        self._load(name)
        return super().get(name, default)

    def __setitem__(self, name: str, command: Any) -> None:
        self._paths.pop(name, None)
        super().__setitem__(name, command)

    def pop(self, name: str, *default: Any) -> Any:
        self._load(name)
        return super().pop(name, *default)

    def __contains__(self, name: object) -> bool:
        return name in self._paths or super().__contains__(name)

    def __len__(self) -> int:
        return len(self._paths) + super().__len__()

    def __iter__(self) -> Any:
        self._load_all()
        return super().__iter__()

    def keys(self) -> Any:
        self._load_all()
        return super().keys()

    def values(self) -> Any:
        self._load_all()
        return super().values()

    def items(self) -> Any:
        self._load_all()
        return super().items()


@click.group(
    cls=PairsGroup,
    commands=_LazyCommands(_COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
