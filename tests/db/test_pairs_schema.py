"""The project's own tables beside MLflow's schema, on real PostgreSQL and SQLite.

Either order of creation works, MLflow's ``alembic_version`` keeps exactly MLflow's head,
``mlflow server`` runs on the result; downgrading ours touches nothing of MLflow's; the
SQLAlchemy models and the migrations agree.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from mlflow import MlflowClient

from mlflow_pairs.db import (
    create_database,
    downgrade_pairs_schema,
    mlflow_schema_status,
    pairs_schema_status,
    upgrade_mlflow_schema,
    upgrade_pairs_schema,
)
from mlflow_pairs.db.pairs_schema import check_pairs_schema
from mlflow_pairs.db.records import (
    pair_report,
    record_performance,
    record_screening,
)
from mlflow_pairs.db.tables import SCHEMA, VERSION_TABLE
from mlflow_pairs.errors import DatabaseError
from tests._tables import read_table
from tests.conftest import free_port, pairs_cli, write_config

OURS = {
    "pairs_screening_results",
    "pairs_model_performance",
    "pairs_variance_stability",
    VERSION_TABLE,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    name = request.getfixturevalue("database_name")
    uri = f"postgresql://postgres@127.0.0.1:5432/{name}"
    create_database(uri)
    return uri


def _engine(uri: str) -> sa.Engine:
    return sa.create_engine(uri, poolclass=sa.pool.NullPool)


def _is_pg(uri: str) -> bool:
    return uri.startswith("postgresql")


def _our_tables(uri: str) -> set[str]:
    engine = _engine(uri)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        if _is_pg(uri):
            if SCHEMA not in inspector.get_schema_names():
                return set()
            names = set(inspector.get_table_names(schema=SCHEMA))
        else:
            names = {n for n in inspector.get_table_names() if n.startswith("pairs_")}
    engine.dispose()
    return names


def _mlflow_tables(uri: str) -> set[str]:
    """Every table in the default schema that is not ours (on PostgreSQL ours live
    elsewhere; on SQLite they carry the prefix)."""
    engine = _engine(uri)
    with engine.connect() as connection:
        names = set(sa.inspect(connection).get_table_names())
    engine.dispose()
    return {n for n in names if not n.startswith("pairs_")}


def _row_counts(uri: str, tables: set[str]) -> dict[str, int]:
    engine = _engine(uri)
    with engine.connect() as connection:
        counts = {
            t: connection.execute(sa.text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()
            for t in sorted(tables)
        }
    engine.dispose()
    return counts


def _mlflow_versions(uri: str) -> list[str]:
    engine = _engine(uri)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    engine.dispose()
    return [r[0] for r in rows]


def _log_a_run(uri: str, tmp_path: Path) -> str:
    """MLflow's own store code creates (or finds) its schema and records a run."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("coexistence", artifact_location=tmp_path.as_uri())
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "sharpe", 1.25)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@contextlib.contextmanager
def _mlflow_server(uri: str, tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` on the database, on a free loopback port."""
    port = free_port()
    log = (tmp_path / f"mlflow-server-{port}.log").open("w")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri",
            uri,
            "--default-artifact-root",
            (tmp_path / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise AssertionError((tmp_path / f"mlflow-server-{port}.log").read_text())
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("mlflow server did not start")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _screening_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "y": ["AAA", "AAA"],
            "x": ["BBB", "CCC"],
            "sector": ["technology", "technology"],
            "hedge_ratio": [1.1, 0.4],
            "adf_stat": [-4.2, -1.1],
            "pvalue": [0.003, 0.6],
            "pair_pvalue": [0.004, 0.81],
            "qvalue": [0.008, 0.81],
            "half_life": [7.5, float("nan")],
            "hurst": [0.31, 0.55],
            "crossings": [40, 3],
            "arch_lm_pvalue": [0.42, 0.03],
            "ljung_box_pvalue": [0.77, 0.01],
            "selected": [True, False],
            "rank": [1.0, float("nan")],
            "rejected_by": ["", "pvalue"],
            "window_start": pd.Timestamp("2020-01-02"),
            "window_end": pd.Timestamp("2022-12-30"),
        }
    )


@pytest.mark.postgres
@pytest.mark.server
@pytest.mark.parametrize("order", ["pairs-then-mlflow", "mlflow-then-pairs"])
def test_either_order_then_mlflow_server_serves_runs(
    store: str, order: str, tmp_path: Path
) -> None:
    if order == "pairs-then-mlflow":
        assert upgrade_pairs_schema(store).is_current
        run_id = _log_a_run(store, tmp_path)  # MLflow initialises its schema itself
        assert upgrade_mlflow_schema(store).is_current  # and ours leaves it at head
    else:
        run_id = _log_a_run(store, tmp_path)
        assert upgrade_pairs_schema(store).is_current

    head = mlflow_schema_status(store).head
    assert _mlflow_versions(store) == [head]
    assert pairs_schema_status(store).is_current
    assert _our_tables(store) == OURS
    assert {"experiments", "runs", "metrics", "registered_models"} <= _mlflow_tables(store)
    assert not (_mlflow_tables(store) & OURS)

    with _mlflow_server(store, tmp_path) as url:
        answer = requests.get(
            f"{url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        metrics = answer.json()["run"]["data"]["metrics"]
        assert metrics == [
            {"key": "sharpe", "value": 1.25, "timestamp": metrics[0]["timestamp"], "step": 0}
        ]
    # The server (MLflow's own start-up checks) left both histories alone.
    assert _mlflow_versions(store) == [head]
    assert pairs_schema_status(store).is_current


@pytest.mark.postgres
def test_upgrade_twice_is_a_noop_and_downgrade_touches_only_ours(
    store: str, tmp_path: Path
) -> None:
    run_id = _log_a_run(store, tmp_path)
    first = upgrade_pairs_schema(store)
    record_screening(store, run_id, _screening_table(), arch_lags=5, ljung_box_lags=10)
    before = read_table(store, "screening_results")
    second = upgrade_pairs_schema(store)
    assert first == second
    assert first.current == "pairs_0002"
    pd.testing.assert_frame_equal(read_table(store, "screening_results"), before)

    mlflow_tables = _mlflow_tables(store)
    counts = _row_counts(store, mlflow_tables)
    assert counts["runs"] == 1
    assert counts["metrics"] == 1
    mlflow_head = _mlflow_versions(store)

    # One step down: the variance-stability table goes, the first migration's stay.
    assert downgrade_pairs_schema(store, "pairs_0001").current == "pairs_0001"
    assert _our_tables(store) == OURS - {"pairs_variance_stability"}
    assert len(read_table(store, "screening_results")) == 2
    # To base: nothing of ours is left, not even the version table or the schema.
    assert downgrade_pairs_schema(store, "base").current is None
    assert _our_tables(store) == set()
    if _is_pg(store):
        engine = _engine(store)
        with engine.connect() as connection:
            assert SCHEMA not in sa.inspect(connection).get_schema_names()
        engine.dispose()
    assert _mlflow_tables(store) == mlflow_tables
    assert _row_counts(store, mlflow_tables) == counts
    assert _mlflow_versions(store) == mlflow_head
    assert MlflowClient(tracking_uri=store, registry_uri=store).get_run(run_id).data.metrics == {
        "sharpe": 1.25
    }

    # And back up again, through both migrations.
    assert upgrade_pairs_schema(store).is_current
    assert _our_tables(store) == OURS


@pytest.mark.postgres
def test_models_and_migrations_agree(store: str, tmp_path: Path) -> None:
    _log_a_run(store, tmp_path)  # MLflow's tables are there too and must be ignored
    upgrade_pairs_schema(store)
    check_pairs_schema(store)  # no pending autogenerate difference

    # The check can fail: a column the models do not have is reported.
    table = f'"{SCHEMA}".pairs_screening_results' if _is_pg(store) else "pairs_screening_results"
    engine = _engine(store)
    with engine.begin() as connection:
        connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN stray INTEGER"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="stray"):
        check_pairs_schema(store)


@pytest.mark.postgres
def test_unknown_revision_names_it_and_the_known_ones(store: str) -> None:
    upgrade_pairs_schema(store)
    with pytest.raises(DatabaseError, match=r"'nope'.*pairs_0001, pairs_0002"):
        downgrade_pairs_schema(store, "nope")
    assert pairs_schema_status(store).is_current


@pytest.mark.postgres
def test_rows_round_trip_with_nulls_and_rewrite(store: str) -> None:
    assert pair_report(store).empty  # reading a database without our tables creates none
    assert pairs_schema_status(store).current is None
    table = _screening_table()
    counts = record_screening(store, "run1", table, arch_lags=5, ljung_box_lags=10)
    assert counts == {"pairs_screening_results": 2, "pairs_variance_stability": 2}
    record_screening(store, "run1", table, arch_lags=5, ljung_box_lags=10)  # replaces
    record_screening(store, "run2", table.iloc[:1], arch_lags=5, ljung_box_lags=10)
    rows = read_table(store, "screening_results", where={"run_id": "run1"})
    assert len(rows) == 2
    assert rows["statistic"].tolist() == [-4.2, -1.1]
    assert rows["half_life"].isna().tolist() == [False, True]
    assert rows["selected"].tolist() == [True, False]
    assert rows["rank"].tolist()[0] == 1
    assert str(rows["window_start"].iloc[0]) == "2020-01-02"
    stability = read_table(store, "variance_stability", where={"run_id": "run1"})
    assert stability["ljung_box_pvalue"].tolist() == [0.77, 0.01]
    assert stability["arch_lags"].tolist() == [5, 5]
    assert len(read_table(store, "screening_results")) == 3

    performance = pd.DataFrame(
        {
            "pair": ["AAA/BBB"],
            "period_start": [pd.Timestamp("2023-01-02")],
            "period_end": [pd.Timestamp("2023-06-30")],
            "f1": [0.7],
            "accuracy": [0.66],
            "auc": [0.71],
            "sharpe": [1.4],
            "max_drawdown": [0.05],
            "trades": [12.0],
        }
    )
    record_performance(
        store, performance, model_name="m", model_version=3, run_id="run1", sector="technology"
    )
    stored = read_table(store, "model_performance")
    assert stored[["y", "x", "model_version", "trades"]].values.tolist() == [["AAA", "BBB", 3, 12]]


@pytest.mark.postgres
def test_db_commands_current_upgrade_downgrade(store: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", {"mlflow": {"backend_store_uri": store}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return pairs_cli("--config", str(config), "db", *args, env=env, cwd=tmp_path)

    before = cli("current")
    assert before.returncode == 0, before.stderr
    assert "MLflow schema:        - (not created)" in before.stdout
    assert "mlflow-pairs tables:  - (not created)" in before.stdout
    upgraded = cli("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "mlflow-pairs tables" in upgraded.stdout
    assert "pairs_0002 (head)" in upgraded.stdout
    head = mlflow_schema_status(store).head
    now = cli("current")
    assert f"MLflow schema:        {head} (head)" in now.stdout
    assert "mlflow-pairs tables:  pairs_0002 (head)" in now.stdout
    down = cli("downgrade", "-1")
    assert down.returncode == 0, down.stderr
    assert "at revision pairs_0001" in down.stdout
    behind = cli("current")
    assert "pairs_0001 (behind head pairs_0002: run `mlflow-pairs db upgrade`)" in behind.stdout
    bad = cli("downgrade", "zzz")
    assert bad.returncode != 0
    assert bad.stderr.strip().startswith("Error: cannot downgrade mlflow-pairs tables to 'zzz'")
    assert "Traceback" not in bad.stderr
    assert cli("downgrade", "base").returncode == 0
    assert _our_tables(store) == set()
    assert _mlflow_versions(store) == [head]
