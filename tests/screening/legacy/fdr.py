"""Benjamini–Hochberg q-values for the false-discovery rate."""

from __future__ import annotations

import numpy as np

__all__ = ["bh_qvalues"]


def bh_qvalues(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q-values) over all non-NaN p-values.

    Selecting every test with ``q <= Q`` keeps the expected share of false discoveries
    at most Q (for independent or positively dependent tests).
    """
    p = np.asarray(pvalues, dtype=float)
    q = np.full(p.shape, np.nan)
    valid = ~np.isnan(p)
    m = int(valid.sum())
    if m == 0:
        return q
    order = np.argsort(p[valid], kind="mergesort")
    ranked = p[valid][order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    values = np.empty(m)
    values[order] = np.minimum(adjusted, 1.0)
    q[valid] = values
    return q
