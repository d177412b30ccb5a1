"""``train --engine spark``: one Spark task per sector against a real ``mlflow-pairs
server`` on PostgreSQL.

One Spark session (``local[2]``) serves the module; the command runs in this process
(click's runner), so it uses that session instead of starting its own. The tasks run in
Spark's Python workers, which log to the server like any client on another machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner

from mlflow_pairs.cli import cli
from mlflow_pairs.config import load_settings
from mlflow_pairs.db import create_database, upgrade_mlflow_schema
from mlflow_pairs.tracking import MlflowConnection
from tests._tables import read_table
from tests.conftest import (
    drop_database,
    free_port,
    pairs_cli,
    pg_url,
    start_pairs_server,
    write_config,
)

pytest.importorskip("pyspark")  # the optional extra (in the dev extra)

pytestmark = [pytest.mark.postgres, pytest.mark.server]

#: Two sectors that train (the sector plugins' universes) and one that cannot: the
#: sample's industrials universe holds one symbol, so no pair can be formed.
TRAINED = ("technology", "energy")
FAILING = "industrials"
#: Small enough to train in seconds (one walk-forward window, two epochs).
SMALL = {
    "backtest": {
        "start": "2018-01-01",
        "formation_days": 504,
        "trading_days": 252,
        "max_windows": 1,
    },
    "ml": {"epochs": 2, "hidden_size": 8},
}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@pytest.fixture(scope="module")
def server(
    pg_admin: sqlalchemy.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``mlflow-pairs server`` on a fresh PostgreSQL database."""
    name = f"mlflow_pairs_test_{uuid.uuid4().hex[:12]}"
    workdir = tmp_path_factory.mktemp("spark-train-server")
    store = pg_url(name)
    create_database(store)
    upgrade_mlflow_schema(store)
    config = write_config(
        workdir / "server.yaml",
        {"mlflow": {"backend_store_uri": store, "artifact_root": "file:./artifacts"}},
    )
    process = start_pairs_server(config, free_port(), workdir / "server.log", _env())
    try:
        yield {"url": process.url, "db": store, "workdir": workdir}
    finally:
        if process.process.poll() is None:
            process.process.send_signal(signal.SIGINT)
            process.process.wait(timeout=60)
        drop_database(pg_admin, name)


def _client_config(server: dict[str, Any], folder: Path, **sections: Any) -> Path:
    """A client of the server: runs and models through it, the project's tables in its
    database (``tables.uri: auto`` takes ``mlflow.backend_store_uri``)."""
    data = {
        **SMALL,
        "mlflow": {
            "tracking_uri": server["url"],
            "experiment_name": f"spark_{uuid.uuid4().hex[:8]}",
            "backend_store_uri": server["db"],
        },
        "sectors": {"active": [*TRAINED, FAILING]},
        **sections,
    }
    return write_config(folder / "client.yaml", data)


@pytest.fixture(scope="module")
def trained(
    server: dict[str, Any], spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """`mlflow-pairs train --engine spark --all-sectors --master local[2]`, in this
    process, in an empty folder."""
    folder = tmp_path_factory.mktemp("spark-train")
    config = _client_config(server, folder)
    environ = {k: None for k in os.environ if k.startswith("MLFLOW_")}
    args = ["--config", str(config), "train", "--engine", "spark", "--all-sectors"]
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        result = CliRunner().invoke(
            cli, [*args, "--master", "local[2]"], env=environ, catch_exceptions=False
        )
    connection = MlflowConnection(load_settings(config, environ={}))
    return {"result": result, "connection": connection, "folder": folder}


def test_each_sector_is_a_task_that_registers_its_model(
    trained: dict[str, Any], server: dict[str, Any]
) -> None:
    """The acceptance test: one registered model per sector that can train, each run
    FINISHED with its artifacts and its rows in the project's tables; the sector that
    fails leaves the others trained and is reported (exit status 2, its one line)."""
    result, connection = trained["result"], trained["connection"]
    connection.activate()  # a model's artifacts are listed through MLflow's global URIs
    assert result.exit_code == 2, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(
        f"Error: sector {FAILING}: universe sample-{FAILING}: 1 symbol(s) (GE); at least 2 "
        "are needed to form a pair"
    )
    assert errors[1] == f"Error: 1 of 3 sectors failed ({FAILING}); 2 trained"
    assert "Traceback" not in result.stderr
    assert "Trained 2 of 3 sectors as Spark tasks" in result.stdout
    sectors = {*TRAINED, FAILING}
    lines = [line.split() for line in result.stdout.splitlines()]
    rows = {parts[0]: parts for parts in lines if parts and parts[0] in sectors}
    assert set(rows) == sectors
    assert rows[FAILING][1:4] == ["failed", "-", "-"]
    client = connection.client
    for sector in TRAINED:
        status, run_id, version = rows[sector][1:4]
        assert status == "trained"
        name = f"pairs_trading_gru_garch_{sector}"
        registered = connection.get_alias(name, "challenger")
        assert registered is not None
        assert (registered.run_id, registered.version) == (run_id, version)
        assert [v.version for v in connection.list_versions(name)] == [version]
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow_pairs.sector"] == sector
        assert run.data.tags["mlflow_pairs.job"] == "train"
        assert run.data.params["universe"] == sector  # the sector plugin's universe
        assert run.data.metrics["windows"] == 1
        assert "garch_gru_sharpe" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run_id, "backtest")}
        assert {"backtest/screening.csv", "backtest/positions.csv"} <= artifacts
        plots = {a.path for a in client.list_artifacts(run_id, "plots")}
        assert "plots/tear_sheet.png" in plots
        model = {a.path for a in client.list_artifacts(run_id, "model")}
        assert {"model/MLmodel", "model/data"} <= model
        screening = read_table(server["db"], "screening_results", where={"run_id": run_id})
        assert len(screening) > 0
        assert set(screening["sector"]) == {sector}
    assert connection.list_versions(f"pairs_trading_gru_garch_{FAILING}") == []
    experiment = connection.get_or_create_experiment()
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["mlflow_pairs.sector"] for r in runs) == sorted(TRAINED)


def test_a_registered_model_answers(trained: dict[str, Any]) -> None:
    """A model trained by a task is complete: the registry serves it in this process."""
    import mlflow

    from mlflow_pairs.jobs import load_panel

    connection = trained["connection"]
    connection.activate()
    served = mlflow.pyfunc.load_model("models:/pairs_trading_gru_garch_energy@challenger")
    prices = load_panel(universe="energy", start="2019-01-01").prices
    answer = served.predict(prices.iloc[-120:].reset_index(names="date"))
    assert set(answer["signal"]) <= {-1, 0, 1}
    assert len(answer) >= 1


def test_a_sector_that_fails_in_its_task_is_a_report(
    server: dict[str, Any], spark: Any, tmp_path: Path
) -> None:
    """In Python: a failure inside a task (here an unknown hedge part, found after the
    prices are loaded) is that sector's report, with its exit status; Spark's job does
    not fail."""
    from mlflow_pairs.spark.train import train_spark

    config = _client_config(server, tmp_path, hedge={"part": "nope"})
    settings = load_settings(config, environ={})
    [report] = train_spark(spark, settings, ["technology"])
    assert report.status == "failed"
    assert report.sector == "technology"
    assert report.error is not None
    assert report.error.startswith("unknown hedge part 'nope' (available: ")
    assert report.exit_code == 1
    assert report.run_id is None


def test_a_store_that_executors_cannot_reach_is_refused(tmp_path: Path) -> None:
    """The embedded SQLite default is refused before any work: one line, exit 2."""
    result = pairs_cli("train", "--engine", "spark", "--all-sectors", env=_env(), cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1, result.stderr
    assert "--engine spark needs a tracking server every executor can reach" in errors[0]
    assert "sqlite:///" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--engine", "spark", "--prices", "p.csv"), "drop --prices"),
        (("--master", "local[2]"), "--master is for --engine spark"),
        (("--engine", "spark", "--master", "locl[2]"), "not a Spark master URL"),
    ],
    ids=["prices", "master-without-spark", "bad-master"],
)
def test_bad_spark_options_are_one_line(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    result = pairs_cli("train", *args, env=_env(), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "mlruns").exists()


def test_without_pyspark_the_spark_engine_says_how_to_install_it(tmp_path: Path) -> None:
    # sys.modules[name] = None is how Python spells "this module is not installed".
    code = (
        "import sys; sys.modules['pyspark'] = None; "
        "sys.argv = ['mlflow-pairs', *sys.argv[1:]]; "
        "from mlflow_pairs.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "train", "--engine", "spark", "--all-sectors"],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2, result.stderr
    assert errors == [
        "Error: Spark support is not installed; install it with: pip install 'mlflow-pairs[spark]'"
    ], result.stderr


def test_settings_sent_to_the_tasks_hold_only_the_variables_they_name(tmp_path: Path) -> None:
    """The tasks get the settings with the variables that the tables' URIs name, and the
    MLFLOW_* variables; nothing else of the driver's environment."""
    from mlflow_pairs.spark.train import task_environment, task_settings

    config = write_config(
        tmp_path / "c.yaml",
        {"mlflow": {"backend_store_uri": "postgresql://u:${DB_PW}@h/db"}},
    )
    settings = load_settings(config, environ={"DB_PW": "s3cret-pw", "HOME": "/root", "X": "1"})
    sent = task_settings(settings)
    assert sent.model_dump() == settings.model_dump()
    assert sent._environ == {"DB_PW": "s3cret-pw"}
    environ = {"MLFLOW_TRACKING_TOKEN": "t", "MLFLOW_TRACKING_URI": "http://h", "PATH": "/bin"}
    assert task_environment(environ) == {"MLFLOW_TRACKING_TOKEN": "t"}
