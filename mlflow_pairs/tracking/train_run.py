"""Logging a walk-forward training run: params, metrics, tables, plots, the model, the
registry aliases and the promotion decision."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlflow_pairs.backtest.promotion import PromotionDecision, decide_promotion
from mlflow_pairs.backtest.results import (
    classification_table,
    model_lift,
    pair_table,
    screening_table,
    variant_metrics,
)
from mlflow_pairs.backtest.walkforward import STATUSES
from mlflow_pairs.tracking.connection import TAG_PREFIX
from mlflow_pairs.tracking.plots import walk_forward_plots

if TYPE_CHECKING:
    from mlflow_pairs.backtest.walkforward import WindowResult
    from mlflow_pairs.data import PricePanel
    from mlflow_pairs.tracking import MlflowConnection

__all__ = [
    "count_configurations",
    "finite_metrics",
    "log_walk_forward",
    "register_and_promote",
    "strategy_hash",
]


def finite_metrics(values: Mapping[str, float | None], prefix: str = "") -> dict[str, float]:
    """``values`` that MLflow can store as metrics (finite numbers), keys prefixed: the
    one filter every metric goes through before ``mlflow.log_metrics``."""
    return {
        f"{prefix}{k}": float(v) for k, v in values.items() if v is not None and math.isfinite(v)
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
        mlflow.log_metrics(finite_metrics({f"{variant}_{k}": v for k, v in stats.items()}))
    scope = "tested"
    lift = model_lift(results, ("tested",))
    if not lift:
        scope, lift = "exploratory", model_lift(results, ("exploratory",))
    if lift:
        mlflow.log_metrics(finite_metrics({f"model_oos_{k}": v for k, v in lift.items()}))
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
        walk_forward_plots(results, plots)
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
