"""Direct PostgreSQL tracking (no server in between) through a database outage.

The outage is real: the test database refuses connections (``ALLOW_CONNECTIONS false``)
and its open connections are terminated; the shared PostgreSQL server keeps running.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import sqlalchemy

from mlflow_pairs.config import load_settings
from mlflow_pairs.db import create_database
from mlflow_pairs.errors import TrackingConnectionError
from mlflow_pairs.tracking import MlflowConnection
from tests.conftest import write_config

pytestmark = pytest.mark.postgres

#: Trust authentication ignores it; it must never show.
PASSWORD = "S3cret-pw"


class Outage:
    """Blocks and restores one database of the shared server."""

    def __init__(self, admin: sqlalchemy.Engine, name: str) -> None:
        self.admin, self.name = admin, name

    def start(self) -> None:
        self._allow(False)
        with self.admin.connect() as connection:
            connection.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": self.name},
            )

    def end(self) -> None:
        self._allow(True)

    def _allow(self, allowed: bool) -> None:
        with self.admin.connect() as connection:
            connection.execute(
                sqlalchemy.text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS {allowed}')
            )


@pytest.fixture
def store(
    pg_admin: sqlalchemy.Engine, database_name: str, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    uri = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{database_name}"
    create_database(uri)
    config = write_config(
        tmp_path / "config.yaml",
        {
            "mlflow": {"tracking_uri": uri, "artifact_root": (tmp_path / "artifacts").as_uri()},
            "backtest": {"start": "2017-01-01", "formation_days": 504, "trading_days": 252,
                         "max_windows": 2},
            "ml": {"epochs": 3, "hidden_size": 8},
        },
    )  # fmt: skip
    outage = Outage(pg_admin, database_name)
    try:
        yield {"uri": uri, "config": config, "outage": outage, "name": database_name}
    finally:
        outage.end()


def _connection(store: dict[str, Any]) -> MlflowConnection:
    connection = MlflowConnection(load_settings(store["config"], environ={}))
    connection.check()
    return connection


def test_a_short_outage_during_a_run_is_retried_and_the_run_finishes(
    store: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    connection = _connection(store)
    with connection.start_run(run_name="outage") as run:
        mlflow.log_metric("before", 1.0)
        store["outage"].start()
        # The database comes back while the next call is being retried.
        restore = threading.Timer(3.0, store["outage"].end)
        restore.start()
        try:
            with caplog.at_level(logging.WARNING):
                mlflow.log_metric("during", 2.0)
                mlflow.log_param("after", "yes")
        finally:
            restore.join()
    stored = connection.client.get_run(run.info.run_id)
    assert stored.info.status == "FINISHED"
    assert stored.data.metrics == {"before": 1.0, "during": 2.0}
    assert stored.data.params == {"after": "yes"}
    retried = [r.getMessage() for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(retried) == 1, retried
    assert "postgres:***@127.0.0.1" in retried[0]
    # MLflow's own traceback for each failed call is not shown.
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert PASSWORD not in caplog.text


def _log_through_outage(
    connection: MlflowConnection, outage: Outage, *, back_before_the_end: bool
) -> None:
    """A run whose metric is logged during the outage."""
    with connection.start_run():
        outage.start()
        try:
            mlflow.log_metric("during", 2.0)
        finally:
            if back_before_the_end:
                outage.end()


def test_a_longer_outage_ends_the_run_failed_with_one_line(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_PAIRS_STORE_RETRY_SECONDS", "1")
    connection = _connection(store)
    with pytest.raises(TrackingConnectionError) as info:
        _log_through_outage(connection, store["outage"], back_before_the_end=True)
    message = str(info.value)
    assert message.startswith(
        f"lost MLflow tracking store postgresql://postgres:***@127.0.0.1:5432/{store['name']}: "
    )
    assert f'database "{store["name"]}" is not currently accepting connections' in message
    assert "gave up on log_metric after" in message
    assert "\n" not in message
    assert PASSWORD not in message
    runs = connection.client.search_runs([connection.get_or_create_experiment().experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_an_outage_that_outlasts_the_run_says_it_is_left_running(
    store: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_PAIRS_STORE_RETRY_SECONDS", "1")
    connection = _connection(store)
    with pytest.raises(TrackingConnectionError) as info:
        _log_through_outage(connection, store["outage"], back_before_the_end=False)
    store["outage"].end()
    runs = connection.client.search_runs([connection.get_or_create_experiment().experiment_id])
    assert [r.info.status for r in runs] == ["RUNNING"]
    message = str(info.value)
    assert f"run {runs[0].info.run_id} could not be marked FAILED and is left RUNNING" in message
    assert "`mlflow-pairs runs reap` closes it" in message
    assert mlflow.active_run() is None


def test_train_through_an_outage_it_cannot_wait_out_exits_2_with_one_line(
    store: dict[str, Any], tmp_path: Path
) -> None:
    """`mlflow-pairs train` logging straight to PostgreSQL; the database goes away once its
    run exists and stays away: one line naming the store (password masked), exit 2, no
    traceback; `runs reap` closes the run afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_PAIRS_STORE_RETRY_SECONDS"] = "2"
    exe = str(Path(sys.executable).with_name("mlflow-pairs"))
    process = subprocess.Popen(
        [exe, "--config", str(store["config"]), "train"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    engine = sqlalchemy.create_engine(
        f"postgresql://postgres@127.0.0.1:5432/{store['name']}", poolclass=sqlalchemy.pool.NullPool
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with engine.connect() as connection:
                    if connection.execute(sqlalchemy.text("SELECT count(*) FROM runs")).scalar():
                        break
            except sqlalchemy.exc.ProgrammingError:
                pass  # MLflow's tables are not there yet
            time.sleep(0.2)
        store["outage"].start()
        _, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
        engine.dispose()
    store["outage"].end()
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert process.returncode == 2, err
    assert len(errors) == 1, err
    assert (
        f"lost MLflow tracking store postgresql://postgres:***@127.0.0.1:5432/{store['name']}"
        in (errors[0])
    )
    assert "is left RUNNING (`mlflow-pairs runs reap` closes it)" in errors[0]
    assert "Traceback" not in err
    assert PASSWORD not in err
    reaped = subprocess.run(
        [exe, "--config", str(store["config"]), "runs", "reap", "--older-than", "0s"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert reaped.returncode == 0, reaped.stderr
    connection = MlflowConnection(load_settings(store["config"], environ={}))
    runs = connection.client.search_runs([connection.get_or_create_experiment().experiment_id])
    assert [r.info.status for r in runs] == ["KILLED"]
