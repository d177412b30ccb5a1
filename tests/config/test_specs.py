"""One definition per setting: the packaged YAML, the schema and the stages' specs agree,
and every setting reaches the spec it configures."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from mlflow_pairs.backtest import CostModel
from mlflow_pairs.config import Settings
from mlflow_pairs.config._loader import default_config_text
from mlflow_pairs.jobs.specs import model_specs, screening_criteria, trading_rules
from mlflow_pairs.model import GarchSpec, HedgeSpec, ModelConfig, TrainingConfig
from mlflow_pairs.model.signals import SignalRule
from mlflow_pairs.screening import ScreeningCriteria


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= _keys(value, f"{prefix}{key}.")
    return out


def test_the_packaged_yaml_states_every_schema_default() -> None:
    raw = yaml.safe_load(default_config_text())
    defaults = Settings().model_dump()
    assert _keys(raw) == _keys(defaults)  # every setting written out, none unknown
    assert Settings.model_validate(raw).model_dump() == defaults


def test_the_default_settings_give_the_specs_defaults() -> None:
    settings = Settings()
    assert model_specs(settings) == {
        "garch": GarchSpec(),
        "hedge": HedgeSpec(),
        "training": TrainingConfig(),
        "config": ModelConfig(),
    }
    assert trading_rules(settings) == (SignalRule(), CostModel())
    assert screening_criteria(settings) == ScreeningCriteria()


def _with(section: str, key: str, value: object) -> Settings:
    data = Settings().model_dump()
    data[section][key] = value
    return Settings.model_validate(data)


#: (section, key, a non-default value, where it lands in the specs)
CHANGES = [
    ("garch", "part", "egarch", lambda s: model_specs(s)["garch"].part),
    ("garch", "p", 2, lambda s: model_specs(s)["garch"].p),
    ("garch", "dist", "t", lambda s: model_specs(s)["garch"].dist),
    ("hedge", "part", "kalman", lambda s: model_specs(s)["hedge"].part),
    ("hedge", "kalman_delta", 1e-3, lambda s: model_specs(s)["hedge"].kalman_delta),
    ("ml", "epochs", 7, lambda s: model_specs(s)["training"].epochs),
    ("ml", "seed", 9, lambda s: model_specs(s)["training"].seed),
    ("ml", "window", 10, lambda s: model_specs(s)["config"].window),
    ("ml", "label_min_z", 1.5, lambda s: model_specs(s)["config"].label_min_z),
    ("ml", "correction_penalty", 0.0, lambda s: model_specs(s)["training"].correction_penalty),
    ("backtest", "max_holding", 15, lambda s: model_specs(s)["config"].horizon),
    ("backtest", "max_holding", 15, lambda s: trading_rules(s)[0].max_holding),
    ("backtest", "exit_z", 0.25, lambda s: model_specs(s)["config"].exit_z),
    ("backtest", "entry_z", 2.5, lambda s: trading_rules(s)[0].entry_z),
    ("backtest", "borrow_bps", 80.0, lambda s: trading_rules(s)[1].borrow_bps),
    ("screening", "fdr", 0.1, lambda s: screening_criteria(s).fdr),
    ("screening", "max_lag", 3, lambda s: screening_criteria(s).max_lag),
    ("screening", "min_crossings", 5, lambda s: screening_criteria(s).min_crossings),
]


@pytest.mark.parametrize(("section", "key", "value", "landed"), CHANGES)
def test_a_setting_reaches_its_spec(section: str, key: str, value: object, landed: Any) -> None:
    assert landed(Settings()) != value
    assert landed(_with(section, key, value)) == value


def test_rolling_zscore_reaches_the_model() -> None:
    data = Settings().model_dump()
    data["hedge"].update(zscore="rolling", zscore_window=40)
    assert model_specs(Settings.model_validate(data))["config"].zscore_window == 40
