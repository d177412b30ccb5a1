"""Promotion gates by hand: evidence, minimums, the lift over |z|, improvements."""

from __future__ import annotations

import pytest

from mlflow_pairs.backtest.promotion import decide_promotion
from mlflow_pairs.config import PerformanceThresholds

GATES = PerformanceThresholds()  # F1 >= 0.7, Sharpe >= 1.0, lift > 0; +0.02, +0.1, -0.01


def _candidate(**changes: float) -> dict[str, float]:
    base = {
        "f1": 0.75,
        "f1_constant": 0.68,
        "sharpe": 1.2,
        "max_drawdown": 0.1,
        "auc_lift_lower": 0.02,
    }
    return {**base, **changes}


def test_first_model_passing_every_gate_is_promoted() -> None:
    decision = decide_promotion(_candidate(), None, GATES)
    assert decision.promote
    assert "no current champion" in decision.reasons
    assert "passed: F1 0.750 (constant predictor 0.680) vs minimum 0.700" in decision.reasons


def test_better_challenger_is_promoted_worse_is_not_with_reasons() -> None:
    champion = {"f1": 0.72, "sharpe": 1.3, "max_drawdown": 0.12}
    better = decide_promotion(_candidate(sharpe=1.45), champion, GATES)
    assert better.promote
    assert all(reason.startswith("passed") for reason in better.reasons)
    worse = decide_promotion(_candidate(f1=0.73, sharpe=1.5), champion, GATES)
    assert not worse.promote
    assert "failed: F1 0.730 vs champion 0.720 + 0.02" in worse.reasons
    assert worse.summary().startswith("not promoted: ")


def test_minimums_apply_even_without_a_champion() -> None:
    decision = decide_promotion(_candidate(f1=0.5, sharpe=2.0), None, GATES)
    assert not decision.promote
    assert "failed: F1 0.500 (constant predictor 0.680) vs minimum 0.700" in decision.reasons


@pytest.mark.parametrize("lower", [-0.01, 0.0, float("nan")])
def test_the_lift_over_the_zscore_baseline_must_be_significant(lower: float) -> None:
    decision = decide_promotion(_candidate(auc_lift_lower=lower), None, GATES)
    assert not decision.promote
    assert any(r.startswith("failed: AUC lift over |z|") for r in decision.reasons)
    # Not measured is said in words, not as "bound nan".
    assert any("not measured" in r for r in decision.reasons) == (lower != lower)
    assert not any("nan" in r for r in decision.reasons)


def test_a_missing_metric_fails_its_gate() -> None:
    candidate = _candidate()
    del candidate["auc_lift_lower"]
    assert not decide_promotion(candidate, None, GATES).promote
    del candidate["f1"], candidate["f1_constant"]
    decision = decide_promotion(candidate, None, GATES)
    assert "failed: F1 not measured on the data after training (constant predictor not " in (
        " ".join(decision.reasons)
    )


@pytest.mark.parametrize("evidence", ["exploratory", "fallback"])
def test_untested_models_are_never_promoted(evidence: str) -> None:
    decision = decide_promotion(_candidate(f1=0.99, sharpe=5.0), None, GATES, evidence)
    assert not decision.promote
    assert decision.reasons[0].startswith(f"failed: {evidence} model")
