from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlflow_pairs.config import (
    backend_store_uri,
    config_hash,
    default_config_text,
    load_settings,
    masked_settings,
)
from mlflow_pairs.errors import ConfigError
from tests.conftest import pairs_cli, write_config

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


#: Passwords holding the characters that delimit a URI, as typed in the environment.
_HARD_PASSWORDS = [
    "Sp3c@l:pw/x%41",
    "a:b@c/d?e#f",
    "p%40ss word+&x",
    "L@:/%#?&+ 9xQ%25%zz@@//::k w",
]


@pytest.mark.parametrize(
    "password", _HARD_PASSWORDS, ids=["at-sign", "delimiters", "percent", "mixed"]
)
def test_any_password_in_the_environment_makes_a_valid_store_uri(
    clean_env: Path, password: str
) -> None:
    from sqlalchemy.engine import make_url

    settings = load_settings(environ={"MLFLOW_DB_PASSWORD": password})
    uri = backend_store_uri(settings)
    url = make_url(uri)
    assert url.password == password
    assert (url.username, url.host, url.port, url.database) == (
        "postgres",
        "localhost",
        None,
        "mlflow_db",
    )
    masked = masked_settings(settings)
    assert masked["mlflow"]["backend_store_uri"] == "postgresql://postgres:***@localhost/mlflow_db"
    for piece in (password, uri.split(":")[2].split("@localhost")[0]):
        assert piece not in repr(masked)


def test_variables_in_the_user_info_are_percent_encoded_and_nowhere_else(
    clean_env: Path,
) -> None:
    from sqlalchemy.engine import make_url

    from mlflow_pairs.config import tables_uri

    path = clean_env / "c.yaml"
    path.write_text(
        "mlflow:\n"
        '  experiment_name: "${EXP}"\n'
        '  backend_store_uri: "postgresql://${DB_USER}:${DB_PW:-d@fault/pw}@${DB_HOST}/${DB}"\n'
        "tables:\n"
        '  uri: "postgresql+psycopg2://t:${TABLES_PASSWORD}@db:6543/pairs?sslmode=${SSL}"\n',
        encoding="utf-8",
    )
    environ = {
        "EXP": "a@b:c/d",
        "DB_USER": "me@corp:x",
        "DB_HOST": "db.example:5433",
        "DB": "mlflow_db",
        "TABLES_PASSWORD": "t@bles/pw#1",
        "SSL": "require",
    }
    settings = load_settings(path, environ=environ)
    assert settings.mlflow.experiment_name == "a@b:c/d"  # not a URI: as is
    url = make_url(backend_store_uri(settings))
    assert (url.username, url.password) == ("me@corp:x", "d@fault/pw")
    assert (url.host, url.port, url.database) == ("db.example", 5433, "mlflow_db")
    tables = tables_uri(settings)
    assert tables is not None
    url = make_url(tables)
    assert (url.username, url.password, url.host, url.port) == ("t", "t@bles/pw#1", "db", 6543)
    assert url.query == {"sslmode": "require"}
    masked = repr(masked_settings(settings))
    assert "t@bles" not in masked
    assert "d@fault" not in masked


def test_a_whole_uri_in_one_variable_is_used_as_written(clean_env: Path) -> None:
    from sqlalchemy.engine import make_url

    path = clean_env / "c.yaml"
    path.write_text('mlflow:\n  backend_store_uri: "${STORE_URI}"\n', encoding="utf-8")
    written = "postgresql://u:p%40ss%2Fw0rd@h:5432/d"
    settings = load_settings(path, environ={"STORE_URI": written})
    uri = backend_store_uri(settings)
    assert uri == written
    assert make_url(uri).password == "p@ss/w0rd"
    masked = repr(masked_settings(settings))
    assert "p%40ss" not in masked
    assert "w0rd" not in masked


@pytest.mark.postgres
def test_a_password_with_uri_delimiters_logs_in_as_written_in_the_environment(
    clean_env: Path, password_postgres: dict[str, Any]
) -> None:
    import sqlalchemy

    port = password_postgres["port"]
    admin = sqlalchemy.create_engine(
        sqlalchemy.URL.create(
            "postgresql", "postgres", password_postgres["password"], "127.0.0.1", port, "postgres"
        ),
        isolation_level="AUTOCOMMIT",
    )
    path = write_config(
        clean_env / "c.yaml",
        {
            "mlflow": {
                "backend_store_uri": "postgresql://${DB_USER}:${MLFLOW_DB_PASSWORD}"
                f"@127.0.0.1:{port}/postgres"
            }
        },
    )
    roles = [f"auditsec_{uuid.uuid4().hex[:8]}_{i}" for i in range(len(_HARD_PASSWORDS))]
    try:
        for role, password in zip(roles, _HARD_PASSWORDS, strict=True):
            with admin.connect() as connection:
                literal = password.replace("'", "''")
                connection.execute(
                    sqlalchemy.text(f"CREATE ROLE {role} LOGIN PASSWORD '{literal}'")
                )
            environ = {"DB_USER": role, "MLFLOW_DB_PASSWORD": password}
            engine = sqlalchemy.create_engine(
                backend_store_uri(load_settings(path, environ=environ))
            )
            try:
                with engine.connect() as connection:
                    who = connection.execute(sqlalchemy.text("SELECT current_user")).scalar()
            finally:
                engine.dispose()
            assert who == role
        # The command line, end to end, with the first one.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(DB_USER=roles[0], MLFLOW_DB_PASSWORD=_HARD_PASSWORDS[0])
        result = pairs_cli("--config", str(path), "db", "current", env=env, cwd=clean_env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert f"database: postgresql://{roles[0]}:***@127.0.0.1:{port}/postgres" in output
        assert "@l:pw" not in output
    finally:
        with admin.connect() as connection:
            for role in roles:
                connection.execute(sqlalchemy.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_the_password_as_env_example_shows_it_in_dotenv(clean_env: Path) -> None:
    from sqlalchemy.engine import make_url

    example = (REPO / "config" / "env.example").read_text("utf-8")
    line = next(
        text.lstrip("# ").strip()
        for text in example.splitlines()
        if text.lstrip("# ").startswith("MLFLOW_DB_PASSWORD='")
    )
    (clean_env / ".env").write_text(line + "\n", encoding="utf-8")
    settings = load_settings()
    assert make_url(backend_store_uri(settings)).password == "Sp3c@l:pw/x%41 #1"
    assert "Sp3c" not in repr(masked_settings(settings))


# -- files as Windows writes them ------------------------------------------------------

#: A password of cmd.exe's special characters and a backslash, as a Windows user types it.
_WINDOWS_PASSWORD = 'Wi^n%d!"o\\ws&10'
#: How each encoding writes a file: with a byte-order mark, as Notepad and PowerShell do.
_WINDOWS_ENCODINGS = {"utf-8-bom": "utf-8-sig", "utf-16-bom": "utf-16"}


def _windows_bytes(text: str, encoding: str) -> bytes:
    return text.replace("\n", "\r\n").encode(_WINDOWS_ENCODINGS[encoding])


@pytest.mark.parametrize("encoding", list(_WINDOWS_ENCODINGS))
def test_dotenv_with_crlf_and_a_byte_order_mark(clean_env: Path, encoding: str) -> None:
    from sqlalchemy.engine import make_url

    dotenv = f"MLFLOW_DB_PASSWORD='{_WINDOWS_PASSWORD}'\nEXP_NAME=from_dotenv\n"
    (clean_env / ".env").write_bytes(_windows_bytes(dotenv, encoding))
    path = write_config(clean_env / "c.yaml", {"mlflow": {"experiment_name": "${EXP_NAME}"}})
    settings = load_settings(path)
    assert settings.mlflow.experiment_name == "from_dotenv"  # no "\r", no mark
    assert make_url(backend_store_uri(settings)).password == _WINDOWS_PASSWORD
    shown = repr(masked_settings(settings))
    assert "postgresql://postgres:***@localhost/mlflow_db" in shown
    assert "Wi^n" not in shown


@pytest.mark.parametrize("encoding", list(_WINDOWS_ENCODINGS))
def test_config_file_with_crlf_and_a_byte_order_mark(clean_env: Path, encoding: str) -> None:
    text = (
        "# saved by Notepad\n"
        "mlflow:\n"
        "  experiment_name: windows_exp\n"
        "  tracking_uri: sqlite:///C:/mlruns/mlflow.db\n"
        "  artifact_root: C:\\mlruns\n"
        "sectors:\n"
        "  active: [technology, energy]\n"
    )
    path = clean_env / "config.yaml"
    path.write_bytes(_windows_bytes(text, encoding))
    settings = load_settings(path, environ={})
    assert settings.mlflow.experiment_name == "windows_exp"
    assert settings.mlflow.tracking_uri == "sqlite:///C:/mlruns/mlflow.db"
    assert settings.mlflow.artifact_root == "C:\\mlruns"
    assert settings.sectors.active == ["technology", "energy"]


def test_windows_paths_are_shown_as_written(clean_env: Path) -> None:
    config = clean_env / "config.yaml"
    config.write_text(
        "mlflow:\n"
        "  tracking_uri: sqlite:///C:/mlruns/mlflow.db\n"
        "  artifact_root: file:///C:/mlruns\n"
        "  registry_uri: 'sqlite:///C:\\mlruns\\registry.db'\n",
        encoding="utf-8",
    )
    result = pairs_cli("--config", str(config), "config", "show", cwd=clean_env)
    assert result.returncode == 0, result.stderr
    assert "tracking_uri: sqlite:///C:/mlruns/mlflow.db" in result.stdout
    assert "artifact_root: file:///C:/mlruns" in result.stdout
    assert "registry_uri: sqlite:///C:\\mlruns\\registry.db" in result.stdout


def test_a_windows_path_in_double_quotes_says_how_to_write_it(clean_env: Path) -> None:
    path = clean_env / "config.yaml"
    path.write_text('mlflow:\n  artifact_root: "C:\\data\\mlruns"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert "unknown escape character" in message
    assert "single quotes or with forward slashes" in message
    assert "\n" not in message
