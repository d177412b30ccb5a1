"""Options shared by every command that takes price data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlflow_pairs.config import Settings
from mlflow_pairs.data import GapPolicy, PricePanel, load_panel

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["data_options", "panel_from_options"]


def _symbols(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if not value:
        return None
    return [s.strip() for s in value.split(",") if s.strip()]


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
) -> PricePanel:
    """Load the panel the options describe, with the configured gap policy."""
    if (universe is None) == (prices is None):
        raise click.UsageError("give exactly one of --universe NAME and --prices FILE")
    policy = GapPolicy(settings.data.gap_policy, settings.data.max_fill_days)
    return load_panel(
        universe=universe,
        prices=prices,
        symbols=symbols,
        start=_date(start, "--start"),
        end=_date(end, "--end"),
        gap_policy=policy,
        min_observations=min_observations,
    )


def _date(value: str | None, option: str) -> Any:
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"not a date: {value!r}", param_hint=option) from None
