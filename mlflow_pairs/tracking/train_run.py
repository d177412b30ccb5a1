"""Logging a walk-forward training run: params, metrics, tables, plots, the model, the
registry aliases and the promotion decision."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlflow_pairs.backtest import performance
from mlflow_pairs.promotion import PromotionDecision, decide_promotion
from mlflow_pairs.tracking.connection import TAG_PREFIX

if TYPE_CHECKING:
    from mlflow_pairs.data import PricePanel
    from mlflow_pairs.tracking import MlflowConnection
    from mlflow_pairs.walkforward import WindowResult

__all__ = [
    "log_walk_forward",
    "pair_table",
    "register_and_promote",
    "screening_table",
    "variant_metrics",
]


def variant_metrics(results: Sequence[WindowResult]) -> dict[str, dict[str, float]]:
    """Portfolio performance of every variant, net and gross of costs."""
    from mlflow_pairs.walkforward import VARIANTS, variant_returns

    table = {}
    for variant in VARIANTS:
        net = variant_returns(results, variant, "net")
        if net.empty:
            continue
        stats = performance(net)
        gross = performance(variant_returns(results, variant, "gross"))
        stats.update({f"gross_{k}": v for k, v in gross.items()})
        positions = pd.concat(
            [b.frame["position"] for w in results for b in w.backtests[variant].values()]
        )
        turnover = pd.concat(
            [b.frame["turnover"] for w in results for b in w.backtests[variant].values()]
        )
        pair_stats = performance(net, turnover=turnover)
        stats["turnover"] = pair_stats["turnover"]
        stats["exposure"] = float((positions != 0).mean())
        book = [
            performance(b.frame["net"], b.frame["position"])
            for w in results
            for b in w.backtests[variant].values()
        ]
        stats["trades"] = float(sum(s["trades"] for s in book))
        wins = [s["win_rate"] * s["trades"] for s in book]
        stats["win_rate"] = sum(wins) / stats["trades"] if stats["trades"] else 0.0
        held = [s["avg_holding_days"] * s["trades"] for s in book]
        stats["avg_holding_days"] = sum(held) / stats["trades"] if stats["trades"] else 0.0
        table[variant] = stats
    return table


def pair_table(results: Sequence[WindowResult]) -> pd.DataFrame:
    """Per window, pair and variant: model metrics (F1, accuracy, AUC) and backtest stats."""
    rows = []
    for window in results:
        for variant, tests in window.backtests.items():
            for pair, backtest in tests.items():
                stats = performance(backtest.frame["net"], backtest.frame["position"])
                model = window.model.pair_metrics_.get(pair, {}) if window.model else {}
                rows.append({
                    "window_start": window.trading[0], "window_end": window.trading[1],
                    "variant": variant, "pair": pair, "weak_evidence": window.weak_evidence,
                    "f1": model.get("f1"), "accuracy": model.get("accuracy"),
                    "auc": model.get("auc"), **stats,
                })  # fmt: skip
    return pd.DataFrame(rows)


def screening_table(results: Sequence[WindowResult]) -> pd.DataFrame:
    """Every window's screening table, with its formation window and evidence flag."""
    return pd.concat(
        [
            w.screening.table.assign(
                formation_start=w.formation[0],
                formation_end=w.formation[1],
                weak_evidence=w.weak_evidence,
            )
            for w in results
        ],
        ignore_index=True,
    )


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


def _plots(results: Sequence[WindowResult], directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mlflow_pairs.walkforward import VARIANTS, variant_returns

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for variant in VARIANTS:
        returns = variant_returns(results, variant)
        if returns.empty:
            continue
        equity = (1 + returns).cumprod()
        top.plot(equity.index, equity, label=variant)
        bottom.plot(equity.index, equity / equity.cummax() - 1, label=variant)
    top.set_title("Equity (net of costs)")
    bottom.set_title("Drawdown")
    top.legend()
    fig.tight_layout()
    fig.savefig(directory / "equity_drawdown.png", dpi=90)
    plt.close(fig)

    last = next((w for w in reversed(results) if w.predictions is not None), None)
    if last is not None and last.predictions is not None:
        pair = last.predictions["pair"].iloc[0]
        rows = last.predictions[last.predictions["pair"] == pair].set_index("date")
        fig, (a, b) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
        a.plot(rows.index, rows["zscore"], label="z-score")
        band = 2.0 * rows["garch_sigma"] / rows["garch_sigma"].median()
        a.plot(rows.index, band, "--", color="grey", label="GARCH-scaled entry band")
        a.plot(rows.index, -band, "--", color="grey")
        a.scatter(
            rows.index[rows["signal"] != 0],
            rows["zscore"][rows["signal"] != 0],
            s=8,
            color="red",
            label="in position",
        )
        a.set_title(f"{pair}: spread z-score, signals and GARCH volatility bands")
        a.legend()
        b.plot(rows.index, rows["garch_sigma"], label="GARCH sigma (1 day ahead)")
        b.legend()
        fig.tight_layout()
        fig.savefig(directory / "spread_signals.png", dpi=90)
        plt.close(fig)
        history = pd.DataFrame(last.model.sequence_.history_) if last.model else None
        if history is not None and not history.empty:
            fig, ax = plt.subplots(figsize=(8, 4))
            for column in ("loss", "val_loss", "f1", "auc"):
                ax.plot(history.index, history[column], label=column)
            ax.set_xlabel("epoch")
            ax.set_title("GRU training curves (last window)")
            ax.legend()
            fig.tight_layout()
            fig.savefig(directory / "gru_training.png", dpi=90)
            plt.close(fig)


def log_walk_forward(results: Sequence[WindowResult], panel: PricePanel) -> dict[str, Any]:
    """Log metrics (prefixed by variant), tables and plots to the active run."""
    import mlflow

    from mlflow_pairs.walkforward import positions_table, returns_table

    metrics = variant_metrics(results)
    for variant, stats in metrics.items():
        mlflow.log_metrics(_finite({f"{variant}_{k}": v for k, v in stats.items()}))
    ablation = pd.DataFrame(metrics).T.rename_axis("variant").reset_index()
    screening = screening_table(results)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ablation.to_csv(folder / "ablation.csv", index=False)
        screening.to_csv(folder / "screening.csv", index=False)
        pair_table(results).to_csv(folder / "pair_performance.csv", index=False)
        positions_table(results).to_csv(folder / "positions.csv", index=False)
        returns_table(results).to_csv(folder / "daily_returns.csv", index=False)
        mlflow.log_artifacts(str(folder), artifact_path="backtest")
        plots = folder / "plots"
        plots.mkdir()
        _plots(results, plots)
        mlflow.log_artifacts(str(plots), artifact_path="plots")
    mlflow.log_table(ablation, "backtest/ablation.json")
    weak = sum(w.weak_evidence for w in results)
    mlflow.log_metrics({"windows": float(len(results)), "weak_evidence_windows": float(weak)})
    if weak:
        mlflow.set_tag(
            "mlflow_pairs.weak_evidence_windows",
            f"{weak} of {len(results)} windows traded fallback pairs (no pair passed)",
        )
    return metrics


def register_and_promote(
    connection: MlflowConnection,
    model: Any,
    panel: PricePanel,
    sector: str,
    candidate: dict[str, float],
) -> tuple[Any, PromotionDecision]:
    """Log the model (signature, input example), register it, alias it challenger, and
    promote it to champion when the gates pass; the decision and reasons become tags."""
    import mlflow

    from mlflow_pairs import flavor

    name = connection.model_name(sector)
    registry = connection.settings.model_registry
    champion = connection.get_alias(name, registry.champion_alias)
    champion_metrics = None
    if champion is not None:
        tags = champion.tags
        try:
            champion_metrics = {
                k: float(tags[f"{TAG_PREFIX}{k}"]) for k in ("f1", "sharpe", "max_drawdown")
            }
        except (KeyError, ValueError):
            champion_metrics = None
    info = flavor.log_model(
        model,
        name="model",
        registered_model_name=name,
        input_example=flavor.input_example(model, panel.prices),
        data_hash=panel.content_hash,
    )
    # This run's version, not the newest: another run may register one meanwhile.
    version = connection.client.get_model_version(name, str(info.registered_model_version))
    for key, value in candidate.items():
        connection.client.set_model_version_tag(
            name, version.version, f"{TAG_PREFIX}{key}", f"{value:.6g}"
        )
    connection.set_alias(name, registry.challenger_alias, version.version)
    decision = decide_promotion(
        candidate, champion_metrics, connection.settings.performance_thresholds
    )
    connection.client.set_model_version_tag(
        name,
        version.version,
        f"{TAG_PREFIX}promotion_decision",
        "promoted" if decision.promote else "not promoted",
    )
    connection.client.set_model_version_tag(
        name, version.version, f"{TAG_PREFIX}promotion_reasons", "; ".join(decision.reasons)
    )
    if decision.promote:
        connection.promote(name, version.version, reason=decision.summary())
    mlflow.set_tag(f"{TAG_PREFIX}promotion", decision.summary())
    return version, decision
