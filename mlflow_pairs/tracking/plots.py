"""Plots of a training or backtest run (matplotlib, headless): equity and drawdown, the
latest window's spread with its signals, the GRU's training curves, and logging them under
``plots/`` of the active run."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from mlflow_pairs.backtest.walkforward import WindowResult

__all__ = [
    "equity_drawdown_plot",
    "log_backtest_plots",
    "spread_signals_plot",
    "walk_forward_plots",
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def equity_drawdown_plot(returns: Mapping[str, pd.Series], path: Path) -> None:
    """Equity (growth of 1, net of costs) and drawdown of each variant's daily returns."""
    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for variant, series in returns.items():
        if series.empty:
            continue
        equity = (1 + series).cumprod()
        top.plot(equity.index, equity, label=variant)
        bottom.plot(equity.index, equity / equity.cummax() - 1, label=variant)
    top.set_title("Equity (net of costs)")
    bottom.set_title("Drawdown")
    top.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def spread_signals_plot(predictions: pd.DataFrame, path: Path, entry_z: float = 2.0) -> bool:
    """The first pair of ``predictions`` (a ``predict(..., all_dates=True)`` output): its
    z-score with the GARCH-scaled entry band and the days in position, and its GARCH
    volatility forecast. ``False`` (nothing drawn) when there is no row."""
    if predictions.empty:
        return False
    plt = _pyplot()
    pair = predictions["pair"].iloc[0]
    rows = predictions[predictions["pair"] == pair].set_index("date")
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    a.plot(rows.index, rows["zscore"], label="z-score")
    band = entry_z * rows["garch_sigma"] / rows["garch_sigma"].median()
    a.plot(rows.index, band, "--", color="grey", label="GARCH-scaled entry band")
    a.plot(rows.index, -band, "--", color="grey")
    held = rows["signal"] != 0
    a.scatter(rows.index[held], rows["zscore"][held], s=8, color="red", label="in position")
    a.set_title(f"{pair}: spread z-score, signals and GARCH volatility bands")
    a.legend()
    b.plot(rows.index, rows["garch_sigma"], label="GARCH sigma (1 day ahead)")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def _training_plot(history: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for column in ("loss", "val_loss", "f1", "auc"):
        ax.plot(history.index, history[column], label=column)
    ax.set_xlabel("epoch")
    ax.set_title("GRU training curves (last window)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def walk_forward_plots(results: Sequence[WindowResult], directory: Path) -> None:
    from mlflow_pairs.backtest.walkforward import VARIANTS, variant_returns

    equity_drawdown_plot(
        {variant: variant_returns(results, variant) for variant in VARIANTS},
        directory / "equity_drawdown.png",
    )
    last = next((w for w in reversed(results) if w.predictions is not None), None)
    if last is not None and last.predictions is not None:
        spread_signals_plot(last.predictions, directory / "spread_signals.png")
        history = pd.DataFrame(last.model.sequence_.history_) if last.model else None
        if history is not None and not history.empty:
            _training_plot(history, directory / "gru_training.png")


def log_backtest_plots(
    variant: str,
    returns: pd.Series,
    book: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    title: str,
    stats: Mapping[str, float] | None = None,
    entry_z: float = 2.0,
) -> None:
    """The plots of a ``backtest --model`` run, logged under ``plots/`` of the active run
    as a train run's are: ``equity_drawdown.png``, ``spread_signals.png`` and
    ``tear_sheet.png`` for the one ``variant`` evaluated.

    Parameters
    ----------
    returns : Series of shape (n_days,)
        The portfolio's net daily returns, indexed by date.
    book : DataFrame
        Its trades (``mlflow_pairs.backtest.trades``), with a ``return`` column.
    predictions : DataFrame
        The model's ``predict(..., all_dates=True)`` output over the evaluated dates.
    """
    import mlflow

    from mlflow_pairs.tracking.tearsheet import tear_sheet

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        equity_drawdown_plot({variant: returns}, folder / "equity_drawdown.png")
        spread_signals_plot(predictions, folder / "spread_signals.png", entry_z)
        tear_sheet(
            {variant: returns},
            {variant: book},
            folder / "tear_sheet.png",
            title=title,
            intervals={variant: dict(stats or {})},
        )
        mlflow.log_artifacts(str(folder), artifact_path="plots")
