"""The connection manager on the embedded SQLite store and against unreachable or
password-protected stores."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest

from mlflow_pairs import __version__
from mlflow_pairs.config import config_hash, load_settings
from mlflow_pairs.errors import TrackingConnectionError
from mlflow_pairs.tracking import MlflowConnection
from tests.conftest import free_port, pairs_cli, write_config


def _connection(tmp_path: Path, **mlflow_section: Any) -> MlflowConnection:
    config = write_config(tmp_path / "config.yaml", {"mlflow": mlflow_section})
    return MlflowConnection(load_settings(config, environ={}), attempts=3, backoff=0.05)


def test_embedded_store_check_creates_experiment_and_tags_runs(clean_env: Path) -> None:
    connection = MlflowConnection(load_settings(environ={}))
    connection.check()
    assert connection.tracking_uri == f"sqlite:///{clean_env / 'mlruns' / 'mlflow.db'}"
    experiment = connection.get_or_create_experiment()
    assert experiment.name == "pairs_trading"
    assert experiment.artifact_location == (clean_env / "mlruns" / "pairs_trading").as_uri()

    with connection.start_run(sector="technology", run_name="t") as run:
        mlflow.log_metric("m", 1.5)
        mlflow.log_text("hello", "notes/a.txt")
    stored = connection.client.get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.info.experiment_id == experiment.experiment_id
    tags = stored.data.tags
    assert tags["mlflow_pairs.sector"] == "technology"
    assert tags["mlflow_pairs.version"] == __version__
    assert tags["mlflow_pairs.config_hash"] == config_hash(connection.settings)
    assert (clean_env / "mlruns" / "pairs_trading").is_dir()
    assert connection.client.download_artifacts(run.info.run_id, "notes/a.txt")


def test_git_commit_tag_when_run_inside_a_repository(clean_env: Path) -> None:
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.email=t@e",
            "-c",
            "user.name=t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    connection = MlflowConnection(load_settings(environ={}))
    assert connection.standard_tags()["mlflow_pairs.git_commit"] == head


def test_failed_block_marks_the_run_failed(clean_env: Path) -> None:
    connection = MlflowConnection(load_settings(environ={}))
    with pytest.raises(RuntimeError), connection.start_run() as run:
        raise RuntimeError("boom")
    assert connection.client.get_run(run.info.run_id).info.status == "FAILED"


def test_deleted_experiment_is_restored(clean_env: Path) -> None:
    connection = MlflowConnection(load_settings(environ={}))
    experiment = connection.get_or_create_experiment()
    connection.client.delete_experiment(experiment.experiment_id)
    assert connection.client.get_experiment(experiment.experiment_id).lifecycle_stage == "deleted"
    restored = connection.get_or_create_experiment()
    assert restored.experiment_id == experiment.experiment_id
    assert restored.lifecycle_stage == "active"


def test_unreachable_server_fails_clearly(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    connection = _connection(tmp_path, tracking_uri=f"http://127.0.0.1:{port}")
    with pytest.raises(TrackingConnectionError) as info:
        connection.check()
    message = str(info.value)
    assert f"http://127.0.0.1:{port}" in message
    assert "unreachable" in message
    assert "after 3 attempts" in message


def test_unreachable_server_fails_from_the_cli_within_bounded_time(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    # The subprocess timeout is the bound: a hang fails the test with TimeoutExpired.
    result = pairs_cli("doctor", env=env, cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert f"[FAIL] tracking  cannot use MLflow tracking store http://127.0.0.1:{port}" in (
        result.stdout
    ), (result.stdout, elapsed)
    assert "Traceback" not in result.stdout + result.stderr


def test_unreachable_database_fails_clearly(tmp_path: Path) -> None:
    port = free_port()
    connection = _connection(
        tmp_path, tracking_uri=f"postgresql://postgres:pw@127.0.0.1:{port}/mlflow_db"
    )
    with pytest.raises(TrackingConnectionError) as info:
        connection.check()
    assert f"postgresql://postgres:***@127.0.0.1:{port}/mlflow_db" in str(info.value)
    assert "database unreachable" in str(info.value)


@pytest.mark.postgres
def test_missing_database_says_how_to_create_it(tmp_path: Path, pg_admin: Any) -> None:
    connection = _connection(
        tmp_path, tracking_uri="postgresql://postgres@127.0.0.1:5432/mlflow_pairs_never_created"
    )
    with pytest.raises(TrackingConnectionError, match="mlflow-pairs db create"):
        connection.check()


@pytest.mark.postgres
def test_wrong_password_fails_without_revealing_it(
    tmp_path: Path, password_postgres: dict[str, Any]
) -> None:
    port, right = password_postgres["port"], password_postgres["password"]
    wrong = "Wr0ngPassw0rd-x9"
    uri = f"postgresql://postgres:{wrong}@127.0.0.1:{port}/postgres"
    connection = _connection(tmp_path, tracking_uri=uri)
    with pytest.raises(TrackingConnectionError) as info:
        connection.check()
    assert "credentials rejected" in str(info.value)
    assert wrong not in str(info.value)
    assert "after 1 attempt" in str(info.value)  # a wrong password is not retried

    # The right password works, so the failure above was the password and nothing else.
    good = _connection(tmp_path / "..", tracking_uri=uri.replace(wrong, right))
    assert good._probe_database() == ("", False)

    config = write_config(
        tmp_path / "cli.yaml",
        {
            "mlflow": {
                "backend_store_uri": f"postgresql://postgres:${{MLFLOW_DB_PASSWORD}}@127.0.0.1:{port}/x_db"
            }
        },
    )
    env = {**os.environ, "MLFLOW_DB_PASSWORD": wrong, "MLFLOW_TRACKING_URI": uri}
    for args in (["doctor"], ["db", "create"]):
        result = pairs_cli("--config", str(config), *args, env=env, cwd=tmp_path)
        assert result.returncode != 0
        assert wrong not in result.stdout + result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert "***" in result.stdout + result.stderr
