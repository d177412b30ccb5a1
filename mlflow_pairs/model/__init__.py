"""The GARCH-GRU hybrid model and its replaceable parts (pure; no MLflow)."""

from mlflow_pairs.model.hybrid import (
    MODEL_FEATURES,
    OUTPUT_COLUMNS,
    GarchGruModel,
    ModelConfig,
    reversion_target,
)
from mlflow_pairs.model.metrics import classification_metrics, roc_auc
from mlflow_pairs.model.sequence import SequencePart, TrainingConfig, select_device
from mlflow_pairs.model.spread import SpreadPart
from mlflow_pairs.model.volatility import (
    GarchConvergenceWarning,
    GarchPart,
    GarchSpec,
    GarchState,
)

__all__ = [
    "MODEL_FEATURES",
    "OUTPUT_COLUMNS",
    "GarchConvergenceWarning",
    "GarchGruModel",
    "GarchPart",
    "GarchSpec",
    "GarchState",
    "ModelConfig",
    "SequencePart",
    "SpreadPart",
    "TrainingConfig",
    "classification_metrics",
    "reversion_target",
    "roc_auc",
    "select_device",
]
