"""A one-page PNG tear sheet comparing the backtests of several model variants.

Four panels: equity curves, drawdowns, rolling Sharpe ratios and the distribution of
trade returns. The figure is meant to be logged as an MLflow artifact next to the
metrics; this module only draws it (no MLflow calls), and imports matplotlib inside
:func:`tear_sheet` so importing the package stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlflow_pairs.backtest.metrics import TRADING_DAYS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.ticker import Formatter

__all__ = ["legend_label", "tear_sheet"]

#: Shown in the trade histogram when no variant traded at all.
NO_TRADES_NOTE = "no trades: flat in every window"
#: Shown in the return panels when every variant's return series is empty.
NO_RETURNS_NOTE = "no returns to plot"


def legend_label(variant: str, stats: Mapping[str, float] | None = None) -> str:
    """Legend text of one variant with the statistics that are available.

    Parameters
    ----------
    variant : str
        Name of the variant, e.g. ``"garch_gru"``.
    stats : mapping of str to float, optional
        Any of ``sharpe`` (annualised), ``sharpe_lower`` and ``sharpe_upper`` (its
        interval, shown only when both are present), ``psr`` and ``dsr``
        (probabilities); missing keys are left out of the label. A paired test against a
        baseline ``B`` (``vs_B_sharpe_diff``, with ``vs_B_sharpe_lower``,
        ``vs_B_sharpe_upper`` and ``vs_B_sharpe_pvalue`` when present) adds a line.

    Returns
    -------
    str
        For instance ``"garch_gru  SR 0.12 [-0.83, 0.95]  PSR 0.61  DSR 0.40"``, then
        ``"  - static_z: SR +0.09 [-0.16, 0.33]  p 0.47"`` per paired test.
    """
    parts = [variant]
    stats = stats or {}
    if "sharpe" in stats:
        sharpe = f"SR {stats['sharpe']:.2f}"
        if "sharpe_lower" in stats and "sharpe_upper" in stats:
            sharpe += f" [{stats['sharpe_lower']:.2f}, {stats['sharpe_upper']:.2f}]"
        parts.append(sharpe)
    for key, name in (("psr", "PSR"), ("dsr", "DSR")):
        if key in stats:
            parts.append(f"{name} {stats[key]:.2f}")
    lines = ["  ".join(parts)]
    for key in stats:
        if not (key.startswith("vs_") and key.endswith("_sharpe_diff")):
            continue
        baseline = key.removeprefix("vs_").removesuffix("_sharpe_diff")
        lower, upper, pvalue = (f"vs_{baseline}_sharpe_{k}" for k in ("lower", "upper", "pvalue"))
        line = f"  - {baseline}: SR {stats[key]:+.2f}"
        if lower in stats and upper in stats:
            line += f" [{stats[lower]:.2f}, {stats[upper]:.2f}]"
        if pvalue in stats:
            line += f"  p {stats[pvalue]:.2f}"
        lines.append(line)
    return "\n".join(lines)


def tear_sheet(
    returns: Mapping[str, pd.Series],
    trades: Mapping[str, pd.DataFrame],
    path: Path,
    *,
    title: str = "",
    intervals: Mapping[str, Mapping[str, float]] | None = None,
    rolling_days: int = 63,
) -> Path:
    """Draw the tear sheet of several variants into one PNG file.

    Parameters
    ----------
    returns : mapping of str to Series of shape (n_days,)
        Net daily simple returns of each variant, indexed by date; NaN is a flat day.
    trades : mapping of str to DataFrame of shape (n_trades, ...)
        Trades of each variant with a ``return`` column (cumulative net return of each
        trade, as from :func:`mlflow_pairs.backtest.metrics.trades`).
    path : Path
        PNG file to write; missing parent folders are created.
    title : str
        Title above the four panels.
    intervals : mapping of str to mapping of str to float, optional
        Per variant, the statistics for its legend label (see :func:`legend_label`).
    rolling_days : int
        Window of the rolling Sharpe ratio, in trading days (annualised with 252).

    Returns
    -------
    Path
        ``path``, once written.
    """
    if rolling_days < 2:
        raise ValueError(f"rolling_days must be at least 2, got {rolling_days}")
    # The Agg canvas directly, not pyplot: no global figure state, no GUI backend.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    intervals = intervals or {}
    figure = Figure(figsize=(13, 8.5), layout="constrained")
    FigureCanvasAgg(figure)
    (equity_ax, drawdown_ax), (sharpe_ax, trades_ax) = figure.subplots(2, 2)
    # One colour per variant across all panels, whichever panels it appears in.
    colours = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys([*returns, *trades]))}

    drawn_equity = drawn_sharpe = dated = False
    for name, series in returns.items():
        r = series.astype(float).fillna(0.0)
        if r.empty:
            continue
        equity = (1.0 + r).cumprod()
        # The starting capital counts as a peak, as in performance()'s max drawdown.
        drawdown = equity / equity.cummax().clip(lower=1.0) - 1.0
        colour = colours[name]
        label = legend_label(name, intervals.get(name))
        equity_ax.plot(r.index, equity.to_numpy(), color=colour, lw=1.2, label=label)
        drawdown_ax.fill_between(r.index, drawdown.to_numpy(), 0.0, color=colour, alpha=0.15)
        drawdown_ax.plot(r.index, drawdown.to_numpy(), color=colour, lw=0.8)
        rolling = _rolling_sharpe(r, rolling_days)
        if rolling.notna().any():
            sharpe_ax.plot(r.index, rolling.to_numpy(), color=colour, lw=1.0, label=name)
            drawn_sharpe = True
        drawn_equity = True
        dated = dated or isinstance(r.index, pd.DatetimeIndex)

    equity_ax.set_title("Equity (net, growth of 1)")
    drawdown_ax.set_title("Drawdown")
    sharpe_ax.set_title(f"Rolling Sharpe ({rolling_days} days, annualised)")
    trades_ax.set_title("Trade returns")
    # Shared date axes only where something was drawn: a note clears its panel's ticks.
    if drawn_equity:
        drawdown_ax.sharex(equity_ax)
        equity_ax.axhline(1.0, color="0.5", lw=0.6)
        equity_ax.legend(loc="upper left", fontsize="small")
        drawdown_ax.yaxis.set_major_formatter(_percent())
        if dated:
            # Short windows crowd the default date labels; the concise ones do not.
            locator = AutoDateLocator()
            equity_ax.xaxis.set_major_locator(locator)
            equity_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        _note(equity_ax, NO_RETURNS_NOTE)
        _note(drawdown_ax, NO_RETURNS_NOTE)
    if drawn_sharpe:
        sharpe_ax.sharex(equity_ax)
        sharpe_ax.axhline(0.0, color="0.5", lw=0.6)
    else:
        _note(sharpe_ax, NO_RETURNS_NOTE if not drawn_equity else f"fewer than {rolling_days} days")
    _trade_histogram(trades_ax, trades, colours)
    if title:
        figure.suptitle(title)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return path


def _trade_histogram(ax: Axes, trades: Mapping[str, pd.DataFrame], colours: dict[str, str]) -> None:
    samples = {
        name: frame["return"].dropna().to_numpy(dtype=float)
        for name, frame in trades.items()
        if "return" in frame
    }
    samples = {name: values for name, values in samples.items() if len(values)}
    if not samples:
        _note(ax, NO_TRADES_NOTE)
        return
    from matplotlib.ticker import MaxNLocator

    # Shared bins so the variants' histograms can be compared bar by bar.
    bins = np.histogram_bin_edges(np.concatenate(list(samples.values())), bins=30).tolist()
    for name, values in samples.items():
        label = f"{name}  {len(values)} trades, mean {values.mean():.2%}"
        ax.hist(values, bins=bins, histtype="step", lw=1.4, color=colours[name], label=label)
    ax.axvline(0.0, color="0.5", lw=0.6)
    ax.xaxis.set_major_formatter(_percent())
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("trades")
    ax.legend(loc="upper left", fontsize="small")


def _rolling_sharpe(r: pd.Series, window: int) -> pd.Series:
    rolling = r.rolling(window, min_periods=window)
    mean, std = rolling.mean(), rolling.std(ddof=1)
    # A flat window (no position) has Sharpe 0; its rolling std can be a rounding
    # residue rather than exactly 0, so test the window's range instead.
    flat = (rolling.max() - rolling.min()) == 0
    sharpe = mean / std.where(~flat) * math.sqrt(TRADING_DAYS)
    return sharpe.where(~flat, 0.0).where(mean.notna())


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def _percent() -> Formatter:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0)
