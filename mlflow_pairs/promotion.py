"""Champion/challenger promotion gates (pure): absolute minimums and improvements."""

from __future__ import annotations

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
) -> PromotionDecision:
    """Apply the gates to ``challenger`` metrics (``f1``, ``sharpe``, ``max_drawdown``).

    The challenger needs F1 and Sharpe at least the configured minimums and, when there is
    a champion, an F1 and a Sharpe higher by the configured improvements and a maximum
    drawdown lower by the configured improvement. Every gate is reported, passed or not.
    """
    reasons = []
    passed = True

    def gate(ok: bool, text: str) -> None:
        nonlocal passed
        passed = passed and ok
        reasons.append(("passed: " if ok else "failed: ") + text)

    f1, sharpe, drawdown = challenger["f1"], challenger["sharpe"], challenger["max_drawdown"]
    gate(f1 >= thresholds.min_f1, f"F1 {f1:.3f} vs minimum {thresholds.min_f1:.3f}")
    gate(
        sharpe >= thresholds.min_sharpe,
        f"Sharpe {sharpe:.3f} vs minimum {thresholds.min_sharpe:.3f}",
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
