"""Options shared by every command that takes price data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from mlflow_pairs.config import Settings
from mlflow_pairs.data import GapPolicy, PricePanel, combine_panels, load_panel, universe_sectors
from mlflow_pairs.data.errors import DataError
from mlflow_pairs.plugins import get_universe

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "LoadedData",
    "check_output_path",
    "data_options",
    "finite",
    "model_specs",
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


@dataclass(frozen=True)
class LoadedData:
    """The panel the options asked for, and the sector of each symbol when known."""

    panel: PricePanel
    sectors: dict[str, str] | None


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
    ``min_symbols`` symbols (2 to form a pair) is an error naming them."""
    loaded = _load(
        settings,
        universe=universe,
        prices=prices,
        symbols=symbols,
        start=start,
        end=end,
        min_observations=min_observations,
    )
    found = loaded.panel.symbols
    if len(found) < min_symbols:
        source = f"universe {universe}" if universe else f"file {prices}"
        raise DataError(
            "too-few-symbols",
            f"{source}: {len(found)} symbol(s) ({', '.join(found) or 'none'}); at least "
            f"{min_symbols} are needed to form a pair",
            symbols=list(found),
        )
    return loaded


def _load(
    settings: Settings,
    *,
    universe: str | None,
    prices: str | None,
    symbols: list[str] | None,
    start: str | None,
    end: str | None,
    min_observations: int,
) -> LoadedData:
    if (universe is None) == (prices is None):
        raise click.UsageError("give exactly one of --universe NAME and --prices FILE")
    policy = GapPolicy(settings.data.gap_policy, settings.data.max_fill_days)
    common = {
        "start": _date(start, "--start"),
        "end": _date(end, "--end"),
        "gap_policy": policy,
        "min_observations": min_observations,
    }
    if prices is not None:
        return LoadedData(load_panel(prices=prices, symbols=symbols, **common), None)
    names = [n.strip() for n in (universe or "").split(",") if n.strip()]
    sectors = universe_sectors(names)
    panels = []
    for name in names:
        wanted = [s for s in symbols if sectors.get(s) is not None] if symbols else None
        members = set(get_universe(name).symbols)
        chosen = [s for s in wanted if s in members] if wanted is not None else None
        if chosen == []:
            continue
        panels.append(load_panel(universe=name, symbols=chosen, **common))
    if symbols:
        unknown = [s for s in symbols if s not in sectors]
        if unknown:
            raise DataError(
                "unknown-symbols",
                f"symbol(s) {', '.join(unknown)} are not in universe(s) {', '.join(names)}",
                symbols=unknown,
            )
    panel = combine_panels(panels)
    return LoadedData(panel, {s: sectors[s] for s in panel.symbols})


def _date(value: str | None, option: str) -> Any:
    import pandas as pd

    if value is None:
        return None
    try:
        return pd.Timestamp(value)
    except ValueError:
        raise click.BadParameter(f"not a date: {value!r}", param_hint=option) from None


def trading_rules(settings: Settings) -> tuple[Any, Any]:
    """The signal rule and cost model of ``settings.backtest``."""
    from mlflow_pairs.backtest import CostModel
    from mlflow_pairs.signals import SignalRule

    bt = settings.backtest
    rule = SignalRule(
        entry_z=bt.entry_z,
        exit_z=bt.exit_z,
        stop_z=bt.stop_z,
        max_holding=bt.max_holding,
        min_probability=bt.min_probability,
    )
    costs = CostModel(
        cost_bps=bt.cost_bps,
        borrow_bps=bt.borrow_bps,
        half_spread_bps=bt.half_spread_bps,
        impact_coefficient=bt.impact_coefficient,
        participation=bt.participation,
    )
    return rule, costs


def model_specs(settings: Settings) -> dict[str, Any]:
    """The model's part specifications from ``settings`` (the one place that maps them):
    ``garch``, ``hedge``, ``training`` and ``config`` keyword arguments of
    :class:`~mlflow_pairs.model.GarchGruModel`. The first-passage target takes the signal
    rule's exit, stop and holding limit, so the label is tied to the trade."""
    from dataclasses import fields

    from mlflow_pairs.model import GarchSpec, HedgeSpec, ModelConfig, TrainingConfig

    ml, bt, hedge = settings.ml, settings.backtest, settings.hedge
    return {
        "garch": GarchSpec(**settings.garch.model_dump()),
        "hedge": HedgeSpec(
            part=hedge.part, kalman_delta=hedge.kalman_delta, kalman_obs_var=hedge.kalman_obs_var
        ),
        "training": TrainingConfig(**{f.name: getattr(ml, f.name) for f in fields(TrainingConfig)}),
        "config": ModelConfig(
            window=ml.window,
            horizon=bt.max_holding,
            exit_z=bt.exit_z,
            stop_z=bt.stop_z,
            label_min_z=ml.label_min_z,
            zscore_window=hedge.zscore_window if hedge.zscore == "rolling" else None,
            validation_fraction=ml.validation_fraction,
            test_fraction=ml.test_fraction,
        ),
    }
