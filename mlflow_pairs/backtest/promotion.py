"""Champion/challenger promotion gates (pure): evidence, absolute minimums, the lift over
the plain baseline, and improvements over the champion."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mlflow_pairs.config import PerformanceThresholds

__all__ = ["PromotionDecision", "decide_promotion"]


@dataclass(frozen=True)
class PromotionDecision:
    """Whether to promote, and every gate's outcome as a sentence."""

    promote: bool
    reasons: tuple[str, ...]

    def summary(self) -> str:
        verdict = "promoted" if self.promote else "not promoted"
        return f"{verdict}: " + "; ".join(self.reasons)


def decide_promotion(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    thresholds: PerformanceThresholds,
    evidence: str = "tested",
) -> PromotionDecision:
    """Apply the gates to ``challenger`` metrics, measured on data after the model's
    training end: ``f1`` (with ``f1_constant``, the constant predictor's, shown beside
    it), ``sharpe``, ``max_drawdown`` and ``auc_lift_lower`` (the lower bound of the
    bootstrap interval of the GRU's AUC lift over the ``|z|`` baseline).

    ``evidence`` is ``tested`` when the model's pairs passed screening; a ``fallback`` or
    ``exploratory`` model (untested pairs) is never promoted. Otherwise the challenger
    needs F1 and Sharpe at least the configured minimums, a lift whose lower bound is
    above the configured minimum, and, when there is a champion, an F1 and a Sharpe
    higher by the configured improvements and a maximum drawdown lower by the
    configured improvement. Every gate is reported, passed or not; a missing or
    undefined metric fails its gate.
    """
    reasons = []
    passed = True

    def gate(ok: bool, text: str) -> None:
        nonlocal passed
        passed = passed and ok
        reasons.append(("passed: " if ok else "failed: ") + text)

    def value(key: str) -> float:
        found = challenger.get(key)
        return float(found) if found is not None else math.nan

    gate(
        evidence == "tested",
        "its pairs passed screening"
        if evidence == "tested"
        else f"{evidence} model: its pairs did not pass screening, so it is never promoted",
    )
    f1, sharpe, drawdown = value("f1"), value("sharpe"), value("max_drawdown")
    lift = value("auc_lift_lower")
    gate(
        f1 >= thresholds.min_f1,
        f"F1 {_shown(f1)} (constant predictor {_shown(value('f1_constant'))}) vs minimum "
        f"{thresholds.min_f1:.3f}",
    )
    gate(
        sharpe >= thresholds.min_sharpe,
        f"Sharpe {sharpe:.3f} vs minimum {thresholds.min_sharpe:.3f}",
    )
    gate(
        lift > thresholds.min_auc_lift_lower,
        f"AUC lift over |z|, lower 95% bound {_shown(lift)} vs above "
        f"{thresholds.min_auc_lift_lower:.3f}",
    )
    if champion is None:
        reasons.append("no current champion")
    else:
        better = thresholds.challenger_improvement
        gate(
            f1 >= champion["f1"] + better.f1,
            f"F1 {f1:.3f} vs champion {champion['f1']:.3f} + {better.f1}",
        )
        gate(
            sharpe >= champion["sharpe"] + better.sharpe,
            f"Sharpe {sharpe:.3f} vs champion {champion['sharpe']:.3f} + {better.sharpe}",
        )
        gate(
            drawdown <= champion["max_drawdown"] - better.max_drawdown,
            f"max drawdown {drawdown:.3f} vs champion {champion['max_drawdown']:.3f} "
            f"- {better.max_drawdown}",
        )
    return PromotionDecision(passed, tuple(reasons))


def _shown(value: float) -> str:
    """A gate's number, or why there is none: no labelled candidate day after the training
    end (F1), or all of them with one outcome (the AUC lift)."""
    return f"{value:.3f}" if not math.isnan(value) else "not measured on the data after training"
