"""What a job takes from the user's choice of data: the price panel with the sector of
each symbol.

The settings-to-spec conversion (``model_specs``, ``trading_rules``) is
:mod:`mlflow_pairs.jobs.specs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlflow_pairs.data import GapPolicy, PricePanel, combine_panels
from mlflow_pairs.data.errors import DataError
from mlflow_pairs.errors import UsageError
from mlflow_pairs.jobs.prices import load_panel, universe_sectors
from mlflow_pairs.plugins import get_universe

if TYPE_CHECKING:
    from mlflow_pairs.config import Settings

__all__ = ["LoadedData", "load_data", "parse_date"]


@dataclass(frozen=True)
class LoadedData:
    """The panel a job asked for, and the sector of each symbol when known (a universe's;
    ``None`` for a file)."""

    panel: PricePanel
    sectors: dict[str, str] | None


def parse_date(value: pd.Timestamp | str | None, what: str = "date") -> pd.Timestamp | None:
    """``value`` as a timestamp; ``None`` stays ``None``.

    Raises
    ------
    UsageError
        ``value`` is not a date (the message names ``what``).
    """
    if value is None or isinstance(value, pd.Timestamp):
        return value
    try:
        return pd.Timestamp(value)
    except ValueError:
        raise UsageError(f"{what}: not a date: {value!r}") from None


def load_data(
    settings: Settings,
    *,
    universe: str | None,
    prices: str | None,
    symbols: Sequence[str] | None,
    start: pd.Timestamp | str | None,
    end: pd.Timestamp | str | None,
    min_observations: int = 1,
    min_symbols: int = 1,
) -> LoadedData:
    """The prices of ``universe`` (one or more registered universes, comma-separated) or
    of the file ``prices``, with the configured gap policy.

    Parameters
    ----------
    settings : Settings
        ``data.gap_policy`` and ``data.max_fill_days`` are used.
    universe, prices : str, optional
        Exactly one of them.
    symbols : sequence of str, optional
        Only these symbols (each must be in the universe(s) or the file).
    start, end : Timestamp or str, optional
        First and last date, inclusive.
    min_observations : int
        Dates each symbol needs after alignment.
    min_symbols : int
        Symbols the panel needs (2 to form a pair).

    Raises
    ------
    DataError
        Unknown symbols, too few symbols (naming them) or too few observations.
    UsageError
        Both or neither of ``universe`` and ``prices``, or a date that is not one.
    """
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
    symbols: Sequence[str] | None,
    start: pd.Timestamp | str | None,
    end: pd.Timestamp | str | None,
    min_observations: int,
) -> LoadedData:
    if (universe is None) == (prices is None):
        raise UsageError("give exactly one of a universe and a price file")
    policy = GapPolicy(settings.data.gap_policy, settings.data.max_fill_days)
    common: dict[str, Any] = {
        "start": parse_date(start, "start"),
        "end": parse_date(end, "end"),
        "gap_policy": policy,
        "min_observations": min_observations,
    }
    if prices is not None:
        wanted = list(symbols) if symbols else None
        return LoadedData(load_panel(prices=prices, symbols=wanted, **common), None)
    names = [n.strip() for n in (universe or "").split(",") if n.strip()]
    sectors = universe_sectors(names)
    panels = []
    for name in names:
        known = [s for s in symbols if sectors.get(s) is not None] if symbols else None
        members = set(get_universe(name).symbols)
        chosen = [s for s in known if s in members] if known is not None else None
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
