from __future__ import annotations

from pathlib import Path

import pytest

from mlflow_pairs.config import (
    backend_store_uri,
    config_hash,
    default_config_text,
    load_settings,
    masked_settings,
)
from mlflow_pairs.errors import ConfigError
from tests.conftest import write_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_without_any_file_are_the_embedded_store(clean_env: Path) -> None:
    settings = load_settings(environ={})
    assert settings.source == "<package defaults>/config.yaml"
    assert settings.mlflow.tracking_uri == "sqlite:///mlruns/mlflow.db"
    assert settings.mlflow.artifact_root == "file:./mlruns"
    assert settings.mlflow.experiment_name == "pairs_trading"
    assert settings.mlflow.registry_uri is None
    assert settings.sectors.active == ["technology"]
    assert settings.model_registry.model_name("technology") == "pairs_trading_gru_garch_technology"
    assert (settings.model_registry.champion_alias, settings.model_registry.challenger_alias) == (
        "champion",
        "challenger",
    )
    thresholds = settings.performance_thresholds
    assert (thresholds.min_f1, thresholds.min_sharpe) == (0.7, 1.0)
    improvement = thresholds.challenger_improvement
    assert (improvement.f1, improvement.sharpe, improvement.max_drawdown) == (0.02, 0.1, 0.01)


def test_packaged_defaults_are_the_checkout_config() -> None:
    assert default_config_text() == (REPO / "config" / "config.yaml").read_text("utf-8")


def test_checkout_config_is_found_from_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("MLFLOW_PAIRS_CONFIG", raising=False)
    assert load_settings(environ={}).source == str(Path("config") / "config.yaml")


def test_variables_and_defaults_are_expanded(clean_env: Path) -> None:
    path = write_config(
        clean_env / "c.yaml",
        {"mlflow": {"experiment_name": "${EXP}", "artifact_root": "${ROOT:-file:./elsewhere}"}},
    )
    settings = load_settings(path, environ={"EXP": "my_exp"})
    assert settings.mlflow.experiment_name == "my_exp"
    assert settings.mlflow.artifact_root == "file:./elsewhere"
    settings = load_settings(path, environ={"EXP": "x", "ROOT": "s3://bucket/a"})
    assert settings.mlflow.artifact_root == "s3://bucket/a"


def test_missing_variable_names_key_variable_and_file(clean_env: Path) -> None:
    path = write_config(clean_env / "c.yaml", {"mlflow": {"experiment_name": "${NOPE_VAR}"}})
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "mlflow.experiment_name" in message
    assert "NOPE_VAR" in message
    assert str(path) in message


def test_database_password_is_only_needed_when_the_store_uri_is_used(clean_env: Path) -> None:
    settings = load_settings(environ={})  # the embedded default needs no password
    with pytest.raises(ConfigError, match=r"mlflow\.backend_store_uri.*MLFLOW_DB_PASSWORD"):
        backend_store_uri(settings)
    settings = load_settings(environ={"MLFLOW_DB_PASSWORD": "hunter22"})
    assert backend_store_uri(settings) == "postgresql://postgres:hunter22@localhost/mlflow_db"


def test_unknown_key_is_named_with_the_file(clean_env: Path) -> None:
    path = write_config(clean_env / "c.yaml", {"mlflow": {"trackin_uri": "sqlite:///x.db"}})
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "unknown key 'mlflow.trackin_uri'" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_section_is_an_error(clean_env: Path) -> None:
    path = write_config(clean_env / "c.yaml", {"mlfow": {}})
    with pytest.raises(ConfigError, match="unknown key 'mlfow'"):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"ml": {"epochs": "ten"}}, "ml.epochs"),
        ({"ml": {"learning_rate": "0.1"}}, "ml.learning_rate"),
        ({"ml": {"epochs": 0}}, "ml.epochs"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"sectors": {"active": "technology"}}, "sectors.active"),
        ({"performance_thresholds": {"min_f1": 1.5}}, "performance_thresholds.min_f1"),
    ],
)
def test_wrong_type_or_range_names_the_key(clean_env: Path, data: dict, key: str) -> None:
    path = write_config(clean_env / "c.yaml", data)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert f"key '{key}'" in str(info.value)
    assert str(path) in str(info.value)


def test_active_sector_must_be_available(clean_env: Path) -> None:
    path = write_config(clean_env / "c.yaml", {"sectors": {"active": ["crypto"]}})
    with pytest.raises(ConfigError, match="crypto"):
        load_settings(path, environ={})


def test_registry_pattern_needs_the_sector_placeholder(clean_env: Path) -> None:
    path = write_config(clean_env / "c.yaml", {"model_registry": {"name_pattern": "model_{x}"}})
    with pytest.raises(ConfigError, match=r"model_registry\.name_pattern"):
        load_settings(path, environ={})


def test_mlflow_environment_variables_override_the_file(clean_env: Path) -> None:
    settings = load_settings(
        environ={"MLFLOW_TRACKING_URI": "http://localhost:5000", "MLFLOW_REGISTRY_URI": "http://r"}
    )
    assert settings.mlflow.tracking_uri == "http://localhost:5000"
    assert settings.mlflow.registry_uri == "http://r"
    assert settings.overrides == {
        "mlflow.tracking_uri": "MLFLOW_TRACKING_URI",
        "mlflow.registry_uri": "MLFLOW_REGISTRY_URI",
    }


def test_dotenv_fills_in_but_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_env / ".env").write_text("EXP_NAME=from_dotenv\nOTHER=dotenv_other\n")
    path = write_config(
        clean_env / "c.yaml",
        {"mlflow": {"experiment_name": "${EXP_NAME}", "artifact_root": "file:./${OTHER}"}},
    )
    assert load_settings(path).mlflow.experiment_name == "from_dotenv"
    monkeypatch.setenv("EXP_NAME", "from_env")
    settings = load_settings(path)
    assert settings.mlflow.experiment_name == "from_env"
    assert settings.mlflow.artifact_root == "file:./dotenv_other"


def test_config_env_var_chooses_the_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(clean_env / "other.yaml", {"mlflow": {"experiment_name": "chosen"}})
    monkeypatch.setenv("MLFLOW_PAIRS_CONFIG", str(path))
    assert load_settings().mlflow.experiment_name == "chosen"


def test_missing_config_file_is_named(clean_env: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yaml does not exist"):
        load_settings(clean_env / "nowhere.yaml")


def test_invalid_yaml_is_named(clean_env: Path) -> None:
    path = clean_env / "bad.yaml"
    path.write_text("mlflow: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, environ={})


def test_masked_settings_and_hash_hide_the_password(clean_env: Path) -> None:
    secret = "S3cret-for-hash-test"
    settings = load_settings(environ={"MLFLOW_DB_PASSWORD": secret})
    masked = masked_settings(settings)
    assert masked["mlflow"]["backend_store_uri"] == "postgresql://postgres:***@localhost/mlflow_db"
    assert secret not in repr(masked)
    other = load_settings(environ={"MLFLOW_DB_PASSWORD": "another-password"})
    # The hash identifies the configuration, not the password.
    assert config_hash(settings) == config_hash(other)
    changed = load_settings(environ={"MLFLOW_DB_PASSWORD": secret, "MLFLOW_TRACKING_URI": "x"})
    assert config_hash(changed) != config_hash(settings)


def test_tables_uri_auto_off_and_explicit(clean_env: Path) -> None:
    from mlflow_pairs.config import tables_uri

    embedded = load_settings(environ={})
    assert tables_uri(embedded) == f"sqlite:///{clean_env / 'mlruns' / 'mlflow.db'}"
    # Tracking through a server: the server's database, whose password must be set.
    served = load_settings(environ={"MLFLOW_TRACKING_URI": "http://localhost:5000"})
    with pytest.raises(ConfigError, match="MLFLOW_DB_PASSWORD"):
        tables_uri(served)
    served = load_settings(
        environ={"MLFLOW_TRACKING_URI": "http://localhost:5000", "MLFLOW_DB_PASSWORD": "pw-x1"}
    )
    assert tables_uri(served) == "postgresql://postgres:pw-x1@localhost/mlflow_db"
    path = clean_env / "tables.yaml"
    path.write_text("tables:\n  uri: off\n")
    assert tables_uri(load_settings(path, environ={})) is None
    secret = "tables-S3cret-pw"
    path.write_text("tables:\n  uri: postgresql://u:${TABLES_PW}@db/pairs\n")
    explicit = load_settings(path, environ={"TABLES_PW": secret})
    assert tables_uri(explicit) == f"postgresql://u:{secret}@db/pairs"
    assert secret not in repr(masked_settings(explicit))
