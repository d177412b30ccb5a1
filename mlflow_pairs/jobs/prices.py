"""Prices for a registered universe or a user's file: load → validate → align, as a
:class:`~mlflow_pairs.data.PricePanel`.

This sits above the plugin registry (it looks universes and price sources up by name);
:mod:`mlflow_pairs.data` below it only defines the panel, the sources' contract and the
checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import format_of
from mlflow_pairs.data.panel import GapPolicy, PricePanel, build_panel
from mlflow_pairs.errors import MlflowPairsError
from mlflow_pairs.plugins import get_price_source, get_universe

__all__ = ["load_panel", "universe_sectors"]


def load_panel(
    *,
    universe: str | None = None,
    prices: str | Path | None = None,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    gap_policy: GapPolicy | None = None,
    min_observations: int = 1,
) -> PricePanel:
    """Prices of a registered universe, or of a CSV/Parquet file, validated and aligned.

    Exactly one of ``universe`` and ``prices`` is given. ``symbols`` narrows either one
    (for a universe it must be a subset of its symbols).
    """
    if (universe is None) == (prices is None):
        raise MlflowPairsError("give either a universe or a price file (--prices), not both")
    start_ts = pd.Timestamp(start) if start is not None else None
    end_ts = pd.Timestamp(end) if end is not None else None
    location: str | None = None
    wanted: list[str] | None
    if universe is not None:
        spec = get_universe(universe)
        wanted = list(symbols) if symbols else list(spec.symbols)
        outside = [s for s in wanted if s not in spec.symbols]
        if outside:
            raise DataError(
                "unknown-symbols",
                f"symbol(s) {', '.join(outside)} are not in universe {universe!r} "
                f"({', '.join(spec.symbols)})",
                symbols=outside,
            )
        source = get_price_source(spec.price_source)
    else:
        path = Path(prices)  # type: ignore[arg-type]
        source = get_price_source(format_of(path))
        location = str(path)
        wanted = list(symbols) if symbols else None
    raw = source.load(wanted, start_ts, end_ts, location)
    return build_panel(
        raw,
        source=source.name,
        source_uri=source.uri(location),
        symbols=wanted,
        start=start_ts,
        end=end_ts,
        gap_policy=gap_policy,
        min_observations=min_observations,
        universe=universe,
    )


def universe_sectors(names: Sequence[str]) -> dict[str, str]:
    """``{symbol: sector}`` of the named universes (the first universe naming a symbol wins)."""
    sectors: dict[str, str] = {}
    for name in names:
        universe = get_universe(name)
        for symbol in universe.symbols:
            sectors.setdefault(symbol, universe.sector)
    return sectors
