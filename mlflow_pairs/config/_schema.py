"""Typed, validated configuration sections.

Each section is a frozen pydantic model that forbids unknown keys and does not coerce
types, so ``epochs: "ten"`` or a misspelt key is an error naming the key.
"""

from __future__ import annotations

import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "GICS_SECTORS",
    "BacktestSettings",
    "DataSettings",
    "GarchSettings",
    "HedgeSettings",
    "ImprovementSettings",
    "MLSettings",
    "MlflowSettings",
    "ModelRegistrySettings",
    "PerformanceThresholds",
    "ScreeningSettings",
    "SectorSettings",
    "ServerSettings",
    "Settings",
]

#: The eleven GICS sectors, as configuration names. ``technology`` is GICS
#: "Information Technology".
GICS_SECTORS: tuple[str, ...] = (
    "communication_services",
    "consumer_discretionary",
    "consumer_staples",
    "energy",
    "financials",
    "health_care",
    "industrials",
    "materials",
    "real_estate",
    "technology",
    "utilities",
)

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MlflowSettings(_Section):
    """Where runs, models and artifacts go.

    ``tracking_uri`` defaults to MLflow's embedded SQLite store under ``./mlruns``; in
    production it is the tracking server (``http://localhost:5000``). ``backend_store_uri``
    and ``artifact_root`` are what ``mlflow-pairs server`` and ``mlflow-pairs db`` use.
    """

    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    registry_uri: str | None = None
    experiment_name: str = "pairs_trading"
    backend_store_uri: str = "postgresql://postgres:${MLFLOW_DB_PASSWORD}@localhost/mlflow_db"
    artifact_root: str = "file:./mlruns"

    @field_validator("tracking_uri", "experiment_name", "backend_store_uri", "artifact_root")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("registry_uri")
    @classmethod
    def _empty_registry_is_none(cls, value: str | None) -> str | None:
        return value or None


class ServerSettings(_Section):
    """Defaults of ``mlflow-pairs server``."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 5000
    workers: PositiveInt = 1
    #: The MLflow server app: ``pairs`` (MLflow's server plus the project's tables, and a
    #: full artifact store answered at once), ``pairs-auth`` (the same behind MLflow's
    #: login), ``basic-auth`` (MLflow's login only) or ``mlflow`` (MLflow's server as it
    #: comes, no ``--app-name``).
    app_name: str = "pairs"

    @field_validator("app_name")
    @classmethod
    def _app_name_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty (use mlflow for MLflow's own server)")
        return value.strip()


class TablesSettings(_Section):
    """Where the project's own tables (screening results, pair performance) are written.

    ``auto``: the tracking store when it is a database, else ``mlflow.backend_store_uri``;
    ``off``: nowhere; or a database URI (``${VAR}`` expanded only when used).
    """

    uri: str = "auto"

    @field_validator("uri", mode="before")
    @classmethod
    def _unquoted_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false


class SectorSettings(_Section):
    """Which sectors the jobs run on (``active``) and which names are valid (``available``)."""

    active: list[str] = Field(default_factory=lambda: ["technology"], min_length=1)
    available: list[str] = Field(default_factory=lambda: list(GICS_SECTORS))

    @model_validator(mode="after")
    def _active_are_available(self) -> SectorSettings:
        unknown = [name for name in self.active if name not in self.available]
        if unknown:
            raise ValueError(
                f"active sector(s) {', '.join(unknown)} not in available "
                f"({', '.join(self.available)})"
            )
        return self


class ModelRegistrySettings(_Section):
    """Registered-model naming and the aliases used instead of MLflow's deprecated stages."""

    name_pattern: str = "pairs_trading_gru_garch_{sector}"
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"

    @field_validator("name_pattern")
    @classmethod
    def _pattern_has_sector(cls, value: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if fields != {"sector"}:
            raise ValueError("must contain the placeholder {sector} and no other placeholder")
        return value

    def model_name(self, sector: str) -> str:
        """The registered-model name of ``sector``."""
        return self.name_pattern.format(sector=sector)


class ImprovementSettings(_Section):
    """How much a challenger must beat the champion by to be promoted."""

    f1: NonNegativeFloat = 0.02
    sharpe: NonNegativeFloat = 0.1
    max_drawdown: NonNegativeFloat = 0.01


class PerformanceThresholds(_Section):
    """Promotion gates, scored on data after the model's training end: absolute
    minimums, the lower bound of the GRU's AUC lift over ``|z|``, and improvements over
    the champion. A model whose pairs did not pass screening is never promoted."""

    min_f1: Annotated[float, Field(ge=0, le=1)] = 0.7
    min_sharpe: float = 1.0
    min_auc_lift_lower: Annotated[float, Field(ge=-1, le=1)] = 0.0
    challenger_improvement: ImprovementSettings = Field(default_factory=ImprovementSettings)


class DataSettings(_Section):
    """How prices are aligned to one trading calendar."""

    gap_policy: Literal["ffill", "drop"] = "ffill"
    max_fill_days: Annotated[int, Field(ge=0)] = 3


class ScreeningSettings(_Section):
    """Cointegration screening: the test and the selection filters."""

    max_lag: Annotated[int, Field(ge=0)] = 1
    autolag: Literal["aic", "bic"] | None = None
    hedge: Literal["ols", "tls"] = "ols"
    max_pvalue: Annotated[float, Field(gt=0, le=1)] = 0.05
    fdr: Annotated[float, Field(gt=0, lt=1)] | None = 0.05
    min_hedge_ratio: float = 0.0
    min_half_life: Annotated[float, Field(ge=0)] = 1.0
    max_half_life: Annotated[float, Field(gt=0)] = 126.0
    min_crossings: Annotated[int, Field(ge=0)] = 12
    max_hurst: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_correlation: Annotated[float, Field(ge=-1, le=1)] = 0.0
    top_k: PositiveInt | None = 10
    cross_sector: bool = False
    arch_lags: PositiveInt = 5
    ljung_box_lags: PositiveInt = 10
    # numpy: the NumPy engine; cpu | cuda: PyTorch there; auto: cuda when present, else numpy.
    device: Literal["auto", "numpy", "cpu", "cuda"] = "auto"


class SparkSettings(_Section):
    """Apache Spark (the optional ``spark`` extra): where ``--engine spark`` runs."""

    master: str = "local[*]"


class BacktestSettings(_Section):
    """Walk-forward protocol, signal rule and costs of ``mlflow-pairs train``."""

    start: str | None = "2014-01-01"
    end: str | None = None
    formation_days: Annotated[int, Field(ge=300)] = 756
    trading_days: Annotated[int, Field(ge=5)] = 126
    max_windows: PositiveInt | None = None
    entry_z: Annotated[float, Field(gt=0)] = 2.0
    exit_z: Annotated[float, Field(ge=0)] = 0.5
    stop_z: Annotated[float, Field(gt=0)] = 4.0
    max_holding: PositiveInt = 20
    min_probability: Annotated[float, Field(ge=0, le=1)] = 0.5
    cost_bps: Annotated[float, Field(ge=0)] = 5.0
    borrow_bps: Annotated[float, Field(ge=0)] = 50.0
    half_spread_bps: Annotated[float, Field(ge=0)] = 0.0
    impact_coefficient: Annotated[float, Field(ge=0)] = 0.0
    participation: Annotated[float, Field(ge=0, le=1)] = 0.01
    fallback_top_k: Annotated[int, Field(ge=0)] = 0
    exploratory_top_k: Annotated[int, Field(ge=0)] = 2

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> BacktestSettings:
        if not self.exit_z < self.entry_z < self.stop_z:
            raise ValueError(
                f"thresholds must satisfy exit_z < entry_z < stop_z, got exit_z "
                f"{self.exit_z}, entry_z {self.entry_z}, stop_z {self.stop_z}"
            )
        return self


class HedgeSettings(_Section):
    """The hedge part (by registered name: ``static``, ``kalman`` or a plugin's) and the
    z-score: the formation window's statistics, or a causal rolling window."""

    part: str = "static"
    zscore: Literal["formation", "rolling"] = "formation"
    zscore_window: Annotated[int, Field(ge=5)] = 63
    kalman_delta: Annotated[float, Field(gt=0, lt=1)] = 1e-4
    kalman_obs_var: Annotated[float, Field(gt=0)] | None = None


class GarchSettings(_Section):
    """The volatility part (by registered name: ``garch``, GJR with ``o > 0``, ``egarch``
    or a plugin's) on scaled daily spread changes."""

    part: str = "garch"
    p: PositiveInt = 1
    o: Annotated[int, Field(ge=0)] = 0
    q: PositiveInt = 1
    dist: Literal["normal", "t"] = "normal"
    mean: Literal["constant", "zero"] = "constant"


class MLSettings(_Section):
    """The sequence part and its training."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42
    epochs: PositiveInt = 50
    batch_size: PositiveInt = 64
    learning_rate: Annotated[float, Field(gt=0)] = 1e-3
    early_stopping_patience: PositiveInt = 5
    window: Annotated[int, Field(ge=2)] = 20
    label_min_z: Annotated[float, Field(ge=0)] = 1.0
    hidden_size: PositiveInt = 32
    num_layers: PositiveInt = 1
    validation_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: Annotated[int, Field(ge=1, le=256)] = 1
    correction_penalty: Annotated[float, Field(ge=0)] = 0.1


class Settings(_Section):
    """The whole configuration; build it with :func:`mlflow_pairs.config.load_settings`."""

    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    tables: TablesSettings = Field(default_factory=TablesSettings)
    sectors: SectorSettings = Field(default_factory=SectorSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    model_registry: ModelRegistrySettings = Field(default_factory=ModelRegistrySettings)
    performance_thresholds: PerformanceThresholds = Field(default_factory=PerformanceThresholds)
    garch: GarchSettings = Field(default_factory=GarchSettings)
    hedge: HedgeSettings = Field(default_factory=HedgeSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    ml: MLSettings = Field(default_factory=MLSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)

    @model_validator(mode="after")
    def _label_fits_the_windows(self) -> Settings:
        # The first-passage label looks max_holding days ahead; each part of the
        # formation window's split must hold more than that, or no day has a label.
        bt, ml = self.backtest, self.ml
        shortest = int(bt.formation_days * min(ml.validation_fraction, ml.test_fraction))
        if bt.max_holding >= shortest:
            raise ValueError(
                f"backtest.max_holding {bt.max_holding} must be below {shortest} days (the "
                f"smallest part of a {bt.formation_days}-day formation window's split)"
            )
        return self

    _source: str = PrivateAttr(default="<defaults>")
    _environ: dict[str, str] = PrivateAttr(default_factory=dict)
    _overrides: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The file the settings were read from."""
        return self._source

    @property
    def overrides(self) -> dict[str, str]:
        """Keys set from MLflow's own environment variables: ``{key: variable}``."""
        return dict(self._overrides)
