"""Binary-classification metrics of reversion probabilities (NumPy, no extra dependency)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["always_reverts_f1", "classification_metrics", "roc_auc"]


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney); NaN when only one class is present."""
    y = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def always_reverts_f1(y_true: np.ndarray) -> float:
    """F1 of the constant classifier "always reverts": recall 1 and precision the
    prevalence p, so ``2p / (1 + p)`` (0 without positives). A minimum F1 alone passes it
    whenever p is high enough (0.54 for F1 0.7), so it is shown beside every F1."""
    y = np.asarray(y_true).astype(bool)
    p = float(y.mean()) if len(y) else 0.0
    return 2 * p / (1 + p)


def classification_metrics(
    y_true: np.ndarray, probability: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """F1, precision, recall, accuracy of ``probability >= threshold``; AUC and Brier
    score of ``probability``."""
    y = np.asarray(y_true).astype(bool)
    predicted = np.asarray(probability) >= threshold
    tp = int((predicted & y).sum())
    fp = int((predicted & ~y).sum())
    fn = int((~predicted & y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "f1": f1,
        "precision": precision,
        "recall": recall,
        "accuracy": float((predicted == y).mean()) if len(y) else float("nan"),
        "auc": roc_auc(y, probability),
        "brier": float(np.mean((np.asarray(probability, dtype=float) - y) ** 2))
        if len(y)
        else float("nan"),
    }
