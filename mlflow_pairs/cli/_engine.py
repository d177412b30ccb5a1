"""The ``--engine`` and ``--master`` options of the commands that can run on Spark."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["engine_options"]


def engine_options(local: str, spark: str) -> Callable[[F], F]:
    """``--engine local|spark`` (what each means for this command: ``local``, ``spark``)
    and ``--master URL``."""

    def decorate(command: F) -> F:
        command = click.option(
            "--master",
            metavar="URL",
            default=None,
            help="Spark master with --engine spark, e.g. local[4] or spark://HOST:7077 "
            "[config: spark.master].",
        )(command)
        return click.option(
            "--engine",
            type=click.Choice(["local", "spark"]),
            default="local",
            show_default=True,
            help=f"local: {local}; spark: {spark} (pip install 'mlflow-pairs[spark]').",
        )(command)

    return decorate
