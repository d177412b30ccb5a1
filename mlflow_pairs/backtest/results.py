"""The walk-forward's result tables and statistics (pure): every variant's performance
with its uncertainty, the GRU's out-of-sample lift over ``|z|``, the classification,
per-pair and screening tables, and the candidate model's metrics. The tracking layer logs
them; nothing here touches MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlflow_pairs.backtest.metrics import performance

if TYPE_CHECKING:
    from mlflow_pairs.backtest.walkforward import WindowResult

__all__ = [
    "BASELINES",
    "candidate_metrics",
    "classification_table",
    "model_lift",
    "pair_table",
    "screening_table",
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


def candidate_metrics(window: WindowResult, seed: int = 0) -> dict[str, float]:
    """The registered model's scores on data after its training end (its trading window):
    the GRU's F1 beside the constant "always reverts" predictor's, the AUC lift over
    ``|z|`` with its interval, and the GARCH-GRU strategy's Sharpe and drawdown there
    (0 when the window was not traded)."""
    from mlflow_pairs.backtest import portfolio_returns
    from mlflow_pairs.model import classification_metrics
    from mlflow_pairs.model.metrics import always_reverts_f1

    out: dict[str, float] = {}
    frame = window.classification
    if frame is not None and len(frame):
        labels = frame["label"].to_numpy()
        out["f1"] = classification_metrics(labels, frame["gru"].to_numpy())["f1"]
        out["f1_constant"] = always_reverts_f1(labels)
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
