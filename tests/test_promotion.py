from __future__ import annotations

from mlflow_pairs.config import PerformanceThresholds
from mlflow_pairs.promotion import decide_promotion

GATES = PerformanceThresholds()  # F1 >= 0.7, Sharpe >= 1.0; +0.02, +0.1, -0.01


def test_first_model_passing_the_minimums_is_promoted() -> None:
    decision = decide_promotion({"f1": 0.75, "sharpe": 1.2, "max_drawdown": 0.1}, None, GATES)
    assert decision.promote
    assert "no current champion" in decision.reasons


def test_better_challenger_is_promoted_worse_is_not_with_reasons() -> None:
    champion = {"f1": 0.72, "sharpe": 1.3, "max_drawdown": 0.12}
    better = decide_promotion({"f1": 0.75, "sharpe": 1.45, "max_drawdown": 0.10}, champion, GATES)
    assert better.promote
    assert all(reason.startswith("passed") for reason in better.reasons)
    worse = decide_promotion({"f1": 0.73, "sharpe": 1.5, "max_drawdown": 0.10}, champion, GATES)
    assert not worse.promote
    assert "failed: F1 0.730 vs champion 0.720 + 0.02" in worse.reasons
    assert worse.summary().startswith("not promoted: ")


def test_minimums_apply_even_without_a_champion() -> None:
    decision = decide_promotion({"f1": 0.5, "sharpe": 2.0, "max_drawdown": 0.05}, None, GATES)
    assert not decision.promote
    assert "failed: F1 0.500 vs minimum 0.700" in decision.reasons
