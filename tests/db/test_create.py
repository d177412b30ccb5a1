"""``db create`` and ``db upgrade`` against the real PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy

from mlflow_pairs.db import create_database, mlflow_schema_status, upgrade_mlflow_schema
from tests.conftest import pairs_cli, write_config

pytestmark = pytest.mark.postgres


def _exists(engine: sqlalchemy.Engine, name: str) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
        )


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg2"])
def test_db_create_twice_then_upgrade_via_cli(
    scheme: str, database_name: str, pg_admin: sqlalchemy.Engine, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        {
            "mlflow": {
                "backend_store_uri": f"{scheme}://postgres:${{MLFLOW_DB_PASSWORD}}@127.0.0.1:5432/{database_name}"
            }
        },
    )
    env = {**os.environ, "MLFLOW_DB_PASSWORD": "not-checked-by-trust-auth"}
    first = pairs_cli("--config", str(config), "db", "create", env=env)
    assert first.returncode == 0, first.stderr
    assert f"Created database {database_name}" in first.stdout
    assert _exists(pg_admin, database_name)

    second = pairs_cli("--config", str(config), "db", "create", env=env)
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout

    upgraded = pairs_cli("--config", str(config), "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    uri = f"{scheme}://postgres@127.0.0.1:5432/{database_name}"
    status = mlflow_schema_status(uri)
    assert status.is_current
    assert status.head in upgraded.stdout
    for output in (first, second, upgraded):
        assert "not-checked-by-trust-auth" not in output.stdout + output.stderr


def test_upgrade_is_idempotent_and_leaves_mlflow_head(database_name: str) -> None:
    uri = f"postgresql://postgres@127.0.0.1:5432/{database_name}"
    assert create_database(uri) is True
    assert create_database(uri) is False
    assert mlflow_schema_status(uri).current is None
    first = upgrade_mlflow_schema(uri)
    second = upgrade_mlflow_schema(uri)
    assert first == second
    assert first.is_current
    engine = sqlalchemy.create_engine(uri)
    with engine.connect() as connection:
        versions = connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
        assert [row[0] for row in versions] == [first.head]
        tables = set(sqlalchemy.inspect(connection).get_table_names())
    engine.dispose()
    assert {"experiments", "runs", "registered_models", "model_versions"} <= tables


def test_sqlite_database_is_created_with_its_folder(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/nested/dir/mlflow.db"
    assert create_database(uri) is True
    assert (tmp_path / "nested" / "dir" / "mlflow.db").exists()
    assert create_database(uri) is False
    assert upgrade_mlflow_schema(uri).is_current
