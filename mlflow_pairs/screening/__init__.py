"""Pair screening: hedge ratios, vectorised Engle–Granger tests, mean-reversion and
variance-stability diagnostics, false-discovery-rate control and selection.

The statistics are computed block pair by block pair (:mod:`.blocks`) by one kernel
(:mod:`._kernel`) on NumPy or PyTorch (:mod:`._backend`); the selection is global.
"""

from mlflow_pairs.screening._backend import (
    DEVICES,
    DeviceUnavailableError,
    get_backend,
    gpu_available,
    resolve_device,
)
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
    "DEVICES",
    "DeviceUnavailableError",
    "EngleGrangerResult",
    "ScreeningCriteria",
    "ScreeningResult",
    "bh_qvalues",
    "candidate_pairs",
    "engle_granger",
    "get_backend",
    "gpu_available",
    "resolve_device",
    "screen",
]
