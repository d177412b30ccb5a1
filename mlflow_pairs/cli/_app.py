"""The click group, its shared context and the one-line error handling."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import click

from mlflow_pairs.config import Settings, load_settings
from mlflow_pairs.errors import MlflowPairsError
from mlflow_pairs.secrets import install_log_redaction, redact

__all__ = ["AppContext", "PairsGroup", "pass_app"]


@dataclass
class AppContext:
    """What every command shares: the chosen config file and the lazily loaded settings."""

    config_path: str | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def connection(self) -> Any:
        from mlflow_pairs.tracking import MlflowConnection

        return MlflowConnection(self.settings)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


class PairsGroup(click.Group):
    """A group whose commands report errors as one line, without a traceback.

    ``--debug`` re-raises instead, so the traceback shows.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, BrokenPipeError):
            raise
        except MlflowPairsError as exc:
            if _debug(ctx):
                raise
            click.echo(f"Error: {redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:
            if _debug(ctx):
                raise
            lines = str(exc).strip().splitlines()
            detail = f": {redact(lines[0])}" if lines else ""
            click.echo(
                f"Error: unexpected {type(exc).__name__}{detail} (run with --debug for details)",
                err=True,
            )
            ctx.exit(1)


def _debug(ctx: click.Context) -> bool:
    app = ctx.find_object(AppContext)
    return bool(app and app.debug)


def configure_logging(debug: bool) -> None:
    install_log_redaction()
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("mlflow_pairs").setLevel(logging.DEBUG if debug else logging.WARNING)
