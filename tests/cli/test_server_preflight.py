"""``mlflow-pairs server`` checks its backend store and its app before starting anything:
a wrong database password, a closed port, a missing database, an unknown app or an
authenticated app without its secret key is one line and exit status 2, at once, instead
of a server that never answers /health.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, pairs_cli, write_config

pytestmark = pytest.mark.postgres


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, **extra}


def _server(tmp_path: Path, store: str, env: dict[str, str], *args: str) -> Any:
    config = write_config(
        tmp_path / "config.yaml",
        {"mlflow": {"backend_store_uri": store, "artifact_root": "file:./artifacts"}},
    )
    # A short start-up limit: without the check, each case would wait it out.
    return pairs_cli(
        "--config", str(config), "server", "--port", str(free_port()),
        "--startup-timeout", "20", *args,
        env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip


def _one_line(result: Any) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_wrong_password_names_the_database_not_the_password(
    tmp_path: Path, password_postgres: dict[str, Any]
) -> None:
    port = password_postgres["port"]
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"
    store = f"postgresql://postgres:${{MLFLOW_DB_PASSWORD}}@127.0.0.1:{port}/postgres"
    result = _server(tmp_path, store, _env(MLFLOW_DB_PASSWORD=wrong))
    line = _one_line(result)
    assert "password authentication failed" in line
    assert f"host 127.0.0.1, port {port}, database postgres, user postgres" in line
    assert wrong not in result.stdout + result.stderr
    assert not (tmp_path / "artifacts").exists()  # nothing was started


def test_closed_port_is_named(tmp_path: Path) -> None:
    port = free_port()
    result = _server(tmp_path, f"postgresql://postgres@127.0.0.1:{port}/mlflow_db", _env())
    line = _one_line(result)
    assert f"host 127.0.0.1, port {port}, database mlflow_db, user postgres" in line
    assert "refused" in line.lower()


def test_missing_database_says_to_create_it(tmp_path: Path) -> None:
    name = f"mlflow_pairs_test_absent_{uuid.uuid4().hex[:8]}"
    result = _server(tmp_path, f"postgresql://postgres@127.0.0.1:5432/{name}", _env())
    line = _one_line(result)
    assert f'database "{name}" does not exist' in line
    assert "mlflow-pairs db create" in line


def test_unknown_app_lists_the_installed_ones(tmp_path: Path) -> None:
    result = _server(
        tmp_path, "postgresql://postgres@127.0.0.1:5432/postgres", _env(), "--app-name", "nope"
    )
    line = _one_line(result)
    assert "--app-name nope: no such MLflow server app" in line
    assert "basic-auth" in line
    assert "pairs-auth" in line


@pytest.mark.parametrize("app_name", ["pairs-auth", "basic-auth"])
def test_auth_app_without_secret_key(tmp_path: Path, app_name: str) -> None:
    result = _server(
        tmp_path, "postgresql://postgres@127.0.0.1:5432/postgres", _env(), "--app-name", app_name
    )
    line = _one_line(result)
    assert f"--app-name {app_name} needs MLFLOW_FLASK_SERVER_SECRET_KEY" in line


def test_auth_app_without_admin_password(tmp_path: Path) -> None:
    auth_config = tmp_path / "auth.ini"
    auth_config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{tmp_path / 'auth.db'}\nadmin_username = admin\n"
    )
    env = _env(
        MLFLOW_FLASK_SERVER_SECRET_KEY=uuid.uuid4().hex, MLFLOW_AUTH_CONFIG_PATH=str(auth_config)
    )
    result = _server(
        tmp_path, "postgresql://postgres@127.0.0.1:5432/postgres", env, "--app-name", "pairs-auth"
    )
    line = _one_line(result)
    assert "needs a password to create the admin user 'admin'" in line
