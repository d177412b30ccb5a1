"""Configuration: ``config/config.yaml`` parsed into typed, validated settings."""

from mlflow_pairs.config._loader import (
    CONFIG_ENV_VAR,
    backend_store_uri,
    config_hash,
    default_config_text,
    find_config_file,
    load_settings,
    masked_settings,
)
from mlflow_pairs.config._schema import (
    GICS_SECTORS,
    BacktestSettings,
    DataSettings,
    GarchSettings,
    ImprovementSettings,
    MlflowSettings,
    MLSettings,
    ModelRegistrySettings,
    PerformanceThresholds,
    ScreeningSettings,
    SectorSettings,
    ServerSettings,
    Settings,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "GICS_SECTORS",
    "BacktestSettings",
    "DataSettings",
    "GarchSettings",
    "ImprovementSettings",
    "MLSettings",
    "MlflowSettings",
    "ModelRegistrySettings",
    "PerformanceThresholds",
    "ScreeningSettings",
    "SectorSettings",
    "ServerSettings",
    "Settings",
    "backend_store_uri",
    "config_hash",
    "default_config_text",
    "find_config_file",
    "load_settings",
    "masked_settings",
]
