"""Pair screening: hedge ratios, vectorised Engle–Granger tests, mean-reversion and
variance-stability diagnostics, false-discovery-rate control and selection."""

from mlflow_pairs.screening.engine import (
    COLUMNS,
    ScreeningCriteria,
    ScreeningResult,
    candidate_pairs,
    screen,
)
from mlflow_pairs.screening.engle_granger import EngleGrangerResult, engle_granger
from mlflow_pairs.screening.fdr import bh_qvalues

__all__ = [
    "COLUMNS",
    "EngleGrangerResult",
    "ScreeningCriteria",
    "ScreeningResult",
    "bh_qvalues",
    "candidate_pairs",
    "engle_granger",
    "screen",
]
