"""Logging a walk-forward training run: params, metrics, tables, plots, the model, the
registry aliases and the promotion decision."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlflow_pairs.backtest import performance
from mlflow_pairs.backtest.promotion import PromotionDecision, decide_promotion
from mlflow_pairs.backtest.walkforward import STATUSES
from mlflow_pairs.tracking.connection import TAG_PREFIX

if TYPE_CHECKING:
    from mlflow_pairs.backtest.walkforward import WindowResult
    from mlflow_pairs.data import PricePanel
    from mlflow_pairs.tracking import MlflowConnection

__all__ = [
    "candidate_metrics",
    "classification_table",
    "count_configurations",
    "equity_drawdown_plot",
    "log_backtest_plots",
    "log_walk_forward",
    "model_lift",
    "pair_table",
    "register_and_promote",
    "screening_table",
    "spread_signals_plot",
    "strategy_hash",
    "variant_metrics",
]

#: The variants the GARCH-GRU is tested against, pairwise, in every run.
BASELINES = ("static_z", "garch")


def variant_metrics(
    results: Sequence[WindowResult], n_trials: int = 3, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Portfolio performance of every variant, net and gross of costs, with its
    uncertainty: a stationary-bootstrap 95% interval of the Sharpe ratio, the
    probabilistic and the deflated Sharpe ratio (``n_trials`` strategies tried), and for
    ``garch_gru`` paired tests against each baseline.

    Computed over the tested windows as traded and the flat ones as flat (0 a day); the
    opt-in fallback's untested windows are left out here and reported apart
    (``fallback_*``).
    """
    from mlflow_pairs.backtest.uncertainty import (
        deflated_sharpe_ratio,
        paired_sharpe_test,
        probabilistic_sharpe_ratio,
        sharpe_interval,
    )
    from mlflow_pairs.backtest.walkforward import VARIANTS, variant_returns

    table: dict[str, dict[str, float]] = {}
    if not any(len(w.trading_dates) for w in results):
        return table
    for variant in VARIANTS:
        net = variant_returns(results, variant, "net")
        stats = performance(net)
        gross = performance(variant_returns(results, variant, "gross"))
        stats.update({f"gross_{k}": v for k, v in gross.items()})
        _, stats["sharpe_lower"], stats["sharpe_upper"] = sharpe_interval(net, seed=seed)
        stats["psr"] = probabilistic_sharpe_ratio(net)
        stats["dsr"] = deflated_sharpe_ratio(net, n_trials)
        traded = [b for w in results if w.status == "tested" for b in w.backtests[variant].values()]
        turnover = [b.frame["turnover"] for b in traded]
        stats["turnover"] = float(sum(t.sum() for t in turnover) / (len(net) / 252))
        positions = [b.frame["position"] for b in traded]
        stats["exposure"] = float(pd.concat(positions).ne(0).mean()) if positions else 0.0
        book = [performance(b.frame["net"], b.frame["position"]) for b in traded]
        stats["trades"] = float(sum(s["trades"] for s in book))
        wins = [s["win_rate"] * s["trades"] for s in book]
        stats["win_rate"] = sum(wins) / stats["trades"] if stats["trades"] else 0.0
        held = [s["avg_holding_days"] * s["trades"] for s in book]
        stats["avg_holding_days"] = sum(held) / stats["trades"] if stats["trades"] else 0.0
        fallback = variant_returns(results, variant, "net", statuses=("fallback",))
        if not fallback.empty:
            stats.update({f"fallback_{k}": v for k, v in performance(fallback).items()})
        table[variant] = stats
    model_returns = variant_returns(results, "garch_gru", "net")
    for baseline in BASELINES:
        test = paired_sharpe_test(model_returns, variant_returns(results, baseline), seed=seed)
        table["garch_gru"].update({f"vs_{baseline}_sharpe_{k}": v for k, v in test.items()})
    return table


def classification_table(results: Sequence[WindowResult]) -> pd.DataFrame:
    """Per window with a model, out of sample on its trading window: the GRU's AUC, Brier
    score and F1 beside the ``|z|`` baseline's and the constant predictor's."""
    from mlflow_pairs.model import classification_metrics

    rows = []
    for window in results:
        frame = window.classification
        if frame is None:
            continue
        labels = frame["label"].to_numpy()
        row: dict[str, Any] = {
            "window_start": window.trading[0],
            "window_end": window.trading[1],
            "status": window.status,
            "exploratory": window.exploratory,
            "samples": len(frame),
            "prevalence": float(labels.mean()) if len(labels) else float("nan"),
        }
        for predictor in ("gru", "zscore", "constant"):
            found = classification_metrics(labels, frame[predictor].to_numpy())
            row.update({f"{predictor}_{k}": found[k] for k in ("auc", "brier", "f1")})
        rows.append(row)
    return pd.DataFrame(rows)


def model_lift(
    results: Sequence[WindowResult], statuses: Sequence[str] = ("tested",), seed: int = 0
) -> dict[str, float]:
    """The GRU's out-of-sample AUC over the ``|z|`` baseline's on the same candidate days,
    pooled over the windows of ``statuses``, with a paired bootstrap 95% interval; and
    both Brier scores. Empty when those windows have no labelled day."""
    from mlflow_pairs.backtest.uncertainty import paired_bootstrap_difference
    from mlflow_pairs.model import roc_auc

    frames = [
        w.classification
        for w in results
        if w.classification is not None
        and (w.status in statuses or (w.exploratory and "exploratory" in statuses))
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return {}
    pooled = pd.concat(frames, ignore_index=True).sort_values("date", kind="stable")
    labels = pooled["label"].to_numpy()
    if len(np.unique(labels)) < 2:
        return {"samples": float(len(pooled))}
    gru, baseline = pooled["gru"].to_numpy(), pooled["zscore"].to_numpy()
    lift = paired_bootstrap_difference(gru, baseline, labels, roc_auc, seed=seed)
    return {
        "samples": float(len(pooled)),
        "gru_auc": roc_auc(labels, gru),
        "zscore_auc": roc_auc(labels, baseline),
        "auc_lift": lift["diff"],
        "auc_lift_lower": lift["lower"],
        "auc_lift_upper": lift["upper"],
        "gru_brier": float(np.mean((gru - labels) ** 2)),
        "zscore_brier": float(np.mean((baseline - labels) ** 2)),
        "constant_brier": float(np.mean((pooled["constant"].to_numpy() - labels) ** 2)),
    }


def strategy_hash(settings: Any) -> str:
    """A short hash of the settings that define the strategy (not where it is logged):
    runs with the same hash tried the same configuration."""
    import hashlib
    import json

    sections = ("screening", "backtest", "garch", "hedge", "ml", "data")
    document = {name: settings.model_dump(mode="json")[name] for name in sections}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:12]


def count_configurations(connection: MlflowConnection, current: str) -> int:
    """Distinct strategy configurations tried by the experiment's train runs, this one
    included: the deflated Sharpe ratio's number of trials is that times the variants."""
    import mlflow

    experiment = connection.get_or_create_experiment().experiment_id
    runs = mlflow.search_runs(
        [experiment],
        filter_string=f"tags.`{TAG_PREFIX}job` = 'train'",
        output_format="pandas",
    )
    column = "params.strategy_hash"
    seen = set(runs[column].dropna()) if column in runs else set()
    return len(seen | {current})


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
                    "variant": variant, "pair": pair, "status": window.status,
                    "weak_evidence": window.weak_evidence,
                    "f1": model.get("f1"), "accuracy": model.get("accuracy"),
                    "auc": model.get("auc"), **stats,
                })  # fmt: skip
    columns = ["window_start", "window_end", "variant", "pair", "status", "weak_evidence"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def screening_table(results: Sequence[WindowResult]) -> pd.DataFrame:
    """Every window's screening table, with its formation window and evidence flag."""
    return pd.concat(
        [
            w.screening.table.assign(
                formation_start=w.formation[0],
                formation_end=w.formation[1],
                status=w.status,
                weak_evidence=w.weak_evidence,
            )
            for w in results
        ],
        ignore_index=True,
    )


def _finite(values: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


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


def _plots(results: Sequence[WindowResult], directory: Path) -> None:
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


def log_walk_forward(
    results: Sequence[WindowResult], panel: PricePanel, n_trials: int = 3
) -> dict[str, Any]:
    """Log metrics (prefixed by variant, with their intervals, PSR, DSR and paired tests),
    the model's out-of-sample lift over ``|z|``, tables, plots and the tear sheet to the
    active run. Returns ``{"variants": ..., "lift": ..., "lift_scope": ...}``."""
    import mlflow

    from mlflow_pairs.backtest import trades
    from mlflow_pairs.backtest.walkforward import (
        VARIANTS,
        positions_table,
        returns_table,
        variant_returns,
    )
    from mlflow_pairs.tracking.tearsheet import tear_sheet

    metrics = variant_metrics(results, n_trials)
    for variant, stats in metrics.items():
        mlflow.log_metrics(_finite({f"{variant}_{k}": v for k, v in stats.items()}))
    scope = "tested"
    lift = model_lift(results, ("tested",))
    if not lift:
        scope, lift = "exploratory", model_lift(results, ("exploratory",))
    if lift:
        mlflow.log_metrics(_finite({f"model_oos_{k}": v for k, v in lift.items()}))
        mlflow.set_tag(f"{TAG_PREFIX}model_oos_scope", scope)
    ablation = pd.DataFrame(metrics).T.rename_axis("variant").reset_index()
    screening = screening_table(results)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ablation.to_csv(folder / "ablation.csv", index=False)
        screening.to_csv(folder / "screening.csv", index=False)
        pair_table(results).to_csv(folder / "pair_performance.csv", index=False)
        positions_table(results).to_csv(folder / "positions.csv", index=False)
        returns_table(results).to_csv(folder / "daily_returns.csv", index=False)
        classification_table(results).to_csv(folder / "classification.csv", index=False)
        mlflow.log_artifacts(str(folder), artifact_path="backtest")
        plots = folder / "plots"
        plots.mkdir()
        _plots(results, plots)
        book = {
            variant: pd.concat(
                [
                    trades(b.frame["position"], b.frame["net"])
                    for w in results
                    if w.status == "tested"
                    for b in w.backtests[variant].values()
                ]
                or [pd.DataFrame(columns=["return"])]
            )
            for variant in VARIANTS
        }
        flat = sum(w.status == "flat" for w in results)
        tear_sheet(
            {v: variant_returns(results, v) for v in VARIANTS},
            book,
            plots / "tear_sheet.png",
            title=f"{panel.universe or panel.source_uri}: {len(results)} windows, flat in {flat}",
            intervals=metrics,
        )
        mlflow.log_artifacts(str(plots), artifact_path="plots")
    mlflow.log_table(ablation, "backtest/ablation.json")
    counts = {status: sum(w.status == status for w in results) for status in STATUSES}
    mlflow.log_metrics(
        {
            "windows": float(len(results)),
            "tested_windows": float(counts["tested"]),
            "flat_windows": float(counts["flat"]),
            "fallback_windows": float(counts["fallback"]),
            "weak_evidence_windows": float(counts["fallback"]),
            "dsr_trials": float(n_trials),
        }
    )
    if counts["fallback"]:
        mlflow.set_tag(
            "mlflow_pairs.weak_evidence_windows",
            f"{counts['fallback']} of {len(results)} windows traded fallback pairs (no pair "
            "passed); they are left out of the headline metrics",
        )
    return {"variants": metrics, "lift": lift, "lift_scope": scope}


def candidate_metrics(window: WindowResult, seed: int = 0) -> dict[str, float]:
    """The registered model's scores on data after its training end (its trading window):
    the GRU's F1 beside the constant "always reverts" predictor's, the AUC lift over
    ``|z|`` with its interval, and the GARCH-GRU strategy's Sharpe and drawdown there
    (0 when the window was not traded)."""
    from mlflow_pairs.backtest import portfolio_returns
    from mlflow_pairs.model import classification_metrics

    out: dict[str, float] = {}
    frame = window.classification
    if frame is not None and len(frame):
        labels = frame["label"].to_numpy()
        prevalence = float(labels.mean())
        out["f1"] = classification_metrics(labels, frame["gru"].to_numpy())["f1"]
        out["f1_constant"] = 2 * prevalence / (1 + prevalence)
        out["oos_samples"] = float(len(frame))
        lift = model_lift([window], (window.status, "exploratory"), seed=seed)
        for key in ("auc_lift", "auc_lift_lower", "auc_lift_upper", "gru_auc", "zscore_auc"):
            if key in lift:
                out[key] = lift[key]
    traded = window.backtests.get("garch_gru")
    returns = portfolio_returns(traded) if traded else pd.Series(0.0, index=window.trading_dates)
    stats = performance(returns.reindex(window.trading_dates, fill_value=0.0))
    out["sharpe"], out["max_drawdown"] = stats["sharpe"], stats["max_drawdown"]
    return out


def register_and_promote(
    connection: MlflowConnection,
    model: Any,
    panel: PricePanel,
    sector: str,
    candidate: dict[str, float],
    evidence: str = "tested",
) -> tuple[Any, PromotionDecision]:
    """Log the model (signature, input example), register it, alias it challenger, and
    promote it to champion when the gates pass; the decision, the reasons and the
    evidence (``tested``, or ``exploratory``/``fallback``: never promoted) become tags."""
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
    info = connection.log_model(
        flavor,
        name="model",
        model=model,
        registered_model_name=name,
        input_example=flavor.example_request(model, panel.prices),
        data_hash=panel.content_hash,
    )
    # This run's version, not the newest: another run may register one meanwhile.
    version = connection.get_version(name, info.registered_model_version)
    tags = {f"{TAG_PREFIX}{key}": f"{value:.6g}" for key, value in candidate.items()}
    tags[f"{TAG_PREFIX}evidence"] = evidence
    if evidence != "tested":
        tags[f"{TAG_PREFIX}exploratory"] = "true"
    connection.tag_version(name, version.version, tags)
    connection.set_alias(name, registry.challenger_alias, version.version)
    decision = decide_promotion(
        candidate, champion_metrics, connection.settings.performance_thresholds, evidence
    )
    connection.tag_version(
        name,
        version.version,
        {
            f"{TAG_PREFIX}promotion_decision": "promoted" if decision.promote else "not promoted",
            f"{TAG_PREFIX}promotion_reasons": "; ".join(decision.reasons),
        },
    )
    if decision.promote:
        connection.promote(name, version.version, reason=decision.summary())
    mlflow.set_tag(f"{TAG_PREFIX}promotion", decision.summary())
    return version, decision
