"""Options shared by every command that takes price data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlflow_pairs.config import Settings
from mlflow_pairs.jobs._inputs import LoadedData, load_data
from mlflow_pairs.jobs.specs import model_specs, trading_rules

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "LoadedData",
    "check_output_path",
    "data_options",
    "finite",
    "model_specs",
    "option_date",
    "panel_from_options",
    "trading_rules",
]


def finite(value: float | None, option: str) -> float | None:
    """``value`` unless it is NaN or infinite (click's ranges let NaN through)."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param_hint=option)
    return value


def check_output_path(path: str, option: str) -> None:
    """Fail before any work when ``path`` cannot be written: its folder must exist (no
    folder is created for a mistyped path) and be writable, and it must not be a folder."""
    import os
    from pathlib import Path

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise click.BadParameter(f"{path} is a folder, not a file", param_hint=option)
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist", param_hint=option)
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise click.BadParameter(f"{path} is not writable", param_hint=option)


def _symbols(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    symbols = [s.strip() for s in value.split(",") if s.strip()]
    if not symbols:
        raise click.BadParameter(f"no symbol in {value!r}; give A,B,...")
    duplicated = sorted({s for s in symbols if symbols.count(s) > 1})
    if duplicated:
        raise click.BadParameter(f"symbol(s) {', '.join(duplicated)} given twice")
    return symbols


def data_options(func: F) -> F:
    """``--universe NAME | --prices FILE [--symbols A,B] [--start DATE] [--end DATE]``."""
    options = [
        click.option(
            "--universe",
            metavar="NAME",
            help="A registered universe (see `mlflow-pairs universes list`).",
        ),
        click.option(
            "--prices",
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="A CSV or Parquet file, wide (date + one column per symbol) or "
            "long (date, symbol, price).",
        ),
        click.option("--symbols", callback=_symbols, metavar="A,B,...", help="Only these symbols."),
        click.option("--start", metavar="DATE", help="First date (inclusive)."),
        click.option("--end", metavar="DATE", help="Last date (inclusive)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def panel_from_options(
    settings: Settings,
    *,
    universe: str | None,
    prices: str | None,
    symbols: list[str] | None,
    start: str | None,
    end: str | None,
    min_observations: int = 1,
    min_symbols: int = 1,
) -> LoadedData:
    """Load the panel the options describe, with the configured gap policy; fewer than
    ``min_symbols`` symbols (2 to form a pair) is an error naming them
    (:func:`mlflow_pairs.jobs.load_data` with the options' own usage errors)."""
    if (universe is None) == (prices is None):
        raise click.UsageError("give exactly one of --universe NAME and --prices FILE")
    return load_data(
        settings,
        universe=universe,
        prices=prices,
        symbols=symbols,
        start=option_date(start, "--start"),
        end=option_date(end, "--end"),
        min_observations=min_observations,
        min_symbols=min_symbols,
    )


def option_date(value: str | None, option: str) -> Any:
    """``value`` of ``option`` as a timestamp (``None`` stays ``None``)."""
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"not a date: {value!r}", param_hint=option) from None
