"""Load → validate → align: prices for a universe or a user's file, as a PricePanel."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import format_of
from mlflow_pairs.data.panel import GapPolicy, PricePanel, build_panel, content_hash
from mlflow_pairs.errors import MlflowPairsError

__all__ = ["combine_panels", "load_panel", "universe_sectors"]


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
    from mlflow_pairs.plugins import get_price_source, get_universe

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


def combine_panels(panels: Sequence[PricePanel]) -> PricePanel:
    """Several panels side by side on their common dates (a symbol keeps its first column)."""
    if len(panels) == 1:
        return panels[0]
    frames = []
    seen: set[str] = set()
    for panel in panels:
        fresh = [s for s in panel.symbols if s not in seen]
        seen.update(fresh)
        frames.append(panel.prices[fresh])
    prices = pd.concat(frames, axis=1, join="inner")
    if prices.empty:
        raise DataError("empty-range", "the universes share no trading dates", symbols=sorted(seen))
    first = panels[0]
    return PricePanel(
        prices=prices,
        source="+".join(dict.fromkeys(p.source for p in panels)),
        source_uri=" ".join(dict.fromkeys(p.source_uri for p in panels)),
        universe=",".join(p.universe or p.source for p in panels),
        gap_policy=first.gap_policy,
        gaps_handled=sum(p.gaps_handled for p in panels),
        content_hash=content_hash(prices),
    )


def universe_sectors(names: Sequence[str]) -> dict[str, str]:
    """``{symbol: sector}`` of the named universes (the first universe naming a symbol wins)."""
    from mlflow_pairs.plugins import get_universe

    sectors: dict[str, str] = {}
    for name in names:
        universe = get_universe(name)
        for symbol in universe.symbols:
            sectors.setdefault(symbol, universe.sector)
    return sectors
