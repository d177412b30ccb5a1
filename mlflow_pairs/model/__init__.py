"""The GARCH-GRU hybrid model and its replaceable parts (pure; no MLflow)."""

from mlflow_pairs.model.hedge import HedgeSpec, KalmanHedge, StaticHedge
from mlflow_pairs.model.hybrid import (
    BUILTIN_PARTS,
    MODEL_FEATURES,
    OUTPUT_COLUMNS,
    GarchGruModel,
    ModelConfig,
    ZScoreBaseline,
    first_passage_target,
)
from mlflow_pairs.model.metrics import classification_metrics, roc_auc
from mlflow_pairs.model.parts import HedgePart, VolatilityPart
from mlflow_pairs.model.sequence import (
    SequencePart,
    TrainingConfig,
    TrainingDivergenceWarning,
    select_device,
)
from mlflow_pairs.model.spread import SpreadPart, ols_hedge
from mlflow_pairs.model.volatility import (
    GarchConvergenceWarning,
    GarchPart,
    GarchSpec,
    GarchState,
)

__all__ = [
    "BUILTIN_PARTS",
    "MODEL_FEATURES",
    "OUTPUT_COLUMNS",
    "GarchConvergenceWarning",
    "GarchGruModel",
    "GarchPart",
    "GarchSpec",
    "GarchState",
    "HedgePart",
    "HedgeSpec",
    "KalmanHedge",
    "ModelConfig",
    "SequencePart",
    "SpreadPart",
    "StaticHedge",
    "TrainingConfig",
    "TrainingDivergenceWarning",
    "VolatilityPart",
    "ZScoreBaseline",
    "classification_metrics",
    "first_passage_target",
    "ols_hedge",
    "roc_auc",
    "select_device",
]
