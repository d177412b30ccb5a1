"""Jobs: the orchestration the CLI, Spark tasks and Python users share.

Plain functions over the pure stages and the plugin registry that return result
objects; only the edges they are given (tracking, tables) talk to MLflow or SQL.
"""

from mlflow_pairs.jobs._inputs import LoadedData, load_data
from mlflow_pairs.jobs.prices import load_panel, universe_sectors
from mlflow_pairs.jobs.score import ScoringGroup, ScoringPlan, plan_scoring, score_local
from mlflow_pairs.jobs.specs import model_specs, screening_criteria, trading_rules
from mlflow_pairs.jobs.train import (
    SectorOutcome,
    SectorReport,
    SectorTraining,
    TablesWrite,
    prepare_training,
    train_sector,
    train_sectors,
    universe_for,
)

__all__ = [
    "LoadedData",
    "ScoringGroup",
    "ScoringPlan",
    "SectorOutcome",
    "SectorReport",
    "SectorTraining",
    "TablesWrite",
    "load_data",
    "load_panel",
    "model_specs",
    "plan_scoring",
    "prepare_training",
    "score_local",
    "screening_criteria",
    "trading_rules",
    "train_sector",
    "train_sectors",
    "universe_for",
    "universe_sectors",
]
