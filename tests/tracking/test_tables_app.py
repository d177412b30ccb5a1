"""The project's tables through the tracking server: ``mlflow-pairs server --app-name
pairs-auth`` (MLflow's basic-auth with the mlflow-pairs endpoints) and ``pairs`` on a real
PostgreSQL store, used by clients that have an MLflow login and no database password.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
import sqlalchemy
from mlflow import MlflowClient

from mlflow_pairs.db import create_database, upgrade_mlflow_schema
from mlflow_pairs.db.records import (
    pair_report,
    record_performance,
    record_screening,
)
from mlflow_pairs.db.remote import (
    PERFORMANCE_PATH,
    REPORT_PATH,
    SCREENING_PATH,
    STATUS_PATH,
    fetch_status,
)
from mlflow_pairs.errors import TrackingConnectionError, UsageError
from tests._tables import read_table
from tests.conftest import drop_database, free_port, pairs_cli, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.server]

#: In the server's store URI only (trust authentication ignores it): it must reach no client.
DB_SECRET = f"db-secret-{uuid.uuid4().hex[:10]}"
ADMIN_PASSWORD = f"admin-{uuid.uuid4().hex}"
READER_PASSWORD = f"reader-{uuid.uuid4().hex}"


def _screening_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "y": ["AAA", "CCC", "AAA"],
            "x": ["BBB", "AAA", "DDD"],
            "sector": ["technology"] * 3,
            "hedge_ratio": [1.1, 0.4, 2.0],
            "adf_stat": [-4.2, -3.9, -1.1],
            "pvalue": [0.003, 0.008, 0.6],
            "pair_pvalue": [0.004, 0.01, 0.81],
            "qvalue": [0.008, 0.015, 0.81],
            "half_life": [7.5, float("inf"), float("nan")],
            "hurst": [0.31, 0.4, 0.55],
            "crossings": [40, 22, 3],
            "arch_lm_pvalue": [0.42, 0.2, 0.03],
            "ljung_box_pvalue": [0.77, 0.5, 0.01],
            "selected": [True, True, False],
            "rank": [1.0, 2.0, float("nan")],
            "rejected_by": ["", "", "pvalue"],
            "window_start": pd.Timestamp("2020-01-02"),
            "window_end": pd.Timestamp("2022-12-30"),
        }
    )


def _performance_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pair": ["AAA/BBB", "CCC/AAA"],
            "period_start": [pd.Timestamp("2023-01-02")] * 2,
            "period_end": [pd.Timestamp("2023-06-30")] * 2,
            "f1": [0.7, float("nan")],
            "accuracy": [0.66, 0.5],
            "auc": [0.71, 0.52],
            "sharpe": [1.4, -0.3],
            "max_drawdown": [0.05, 0.12],
            "trades": [12.0, 4.0],
        }
    )


def _wait_for(process: subprocess.Popen[str], url: str, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        if "MLflow UI:" in log.read_text(errors="replace"):
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"server did not come up:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(
    pg_admin: sqlalchemy.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """``mlflow-pairs server --app-name pairs-auth`` on a fresh PostgreSQL database."""
    name = f"mlflow_pairs_test_{uuid.uuid4().hex[:12]}"
    workdir = tmp_path_factory.mktemp("tables-app")
    store = f"postgresql://postgres:{DB_SECRET}@127.0.0.1:5432/{name}"
    create_database(store)
    upgrade_mlflow_schema(store)
    config = write_config(
        workdir / "server.yaml",
        {
            "mlflow": {
                "backend_store_uri": (
                    f"postgresql://postgres:${{MLFLOW_DB_PASSWORD}}@127.0.0.1:5432/{name}"
                ),
                "artifact_root": "file:./artifacts",
            }
        },
    )
    auth_config = workdir / "basic_auth.ini"
    auth_config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{workdir / 'basic_auth.db'}\nadmin_username = admin\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # The auth settings come from the server's .env, as MLFLOW_DB_PASSWORD does.
    (workdir / ".env").write_text(
        f"MLFLOW_DB_PASSWORD={DB_SECRET}\n"
        f"MLFLOW_FLASK_SERVER_SECRET_KEY={uuid.uuid4().hex}\n"
        f"MLFLOW_AUTH_CONFIG_PATH={auth_config}\n"
        f"MLFLOW_AUTH_ADMIN_PASSWORD={ADMIN_PASSWORD}\n"
    )
    port = free_port()
    log = workdir / "server.log"
    exe = Path(sys.executable).with_name("mlflow-pairs")
    with log.open("w") as handle:
        process = subprocess.Popen(
            [str(exe), "--config", str(config), "server", "--port", str(port),
             "--app-name", "pairs-auth"],
            stdout=handle, stderr=subprocess.STDOUT, env=env, text=True, cwd=workdir,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    info = {"url": url, "db": name, "store": store, "workdir": workdir, "log": log}
    try:
        _wait_for(process, url, log)
        yield info
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
        drop_database(pg_admin, name)


@pytest.fixture
def as_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def written(server: dict[str, Any]) -> dict[str, Any]:
    """A run and a registered model of the admin, and their rows written through the
    server by the client functions ``screen`` and ``train`` use."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        patch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        client = MlflowClient(tracking_uri=server["url"], registry_uri=server["url"])
        experiment_id = client.create_experiment(f"tables_{uuid.uuid4().hex[:8]}")
        run_id = client.create_run(experiment_id).info.run_id
        model = f"pairs_model_{uuid.uuid4().hex[:6]}"
        client.create_registered_model(model)
        screened = record_screening(
            server["url"], run_id, _screening_table(), arch_lags=5, ljung_box_lags=10
        )
        performed = record_performance(
            server["url"], _performance_table(), model_name=model, model_version=1,
            run_id=run_id, sector="technology",
        )  # fmt: skip
    return {
        "experiment_id": experiment_id,
        "run_id": run_id,
        "model": model,
        "counts": {**screened, **performed},
    }


def _client_env(server: dict[str, Any], **extra: str) -> dict[str, str]:
    """A client's environment: the tracking URI, no database password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "MLFLOW_TRACKING_URI": server["url"], **extra}


def _client_config(server: dict[str, Any], tmp_path: Path, tables: str = "auto") -> Path:
    # The client's store URI needs MLFLOW_DB_PASSWORD, which it does not have: reading
    # the database directly would fail, so an answer proves it came through the server.
    return write_config(
        tmp_path / "client.yaml",
        {
            "mlflow": {
                "backend_store_uri": (
                    f"postgresql://postgres:${{MLFLOW_DB_PASSWORD}}@127.0.0.1:5432/{server['db']}"
                )
            },
            "tables": {"uri": tables},
        },
    )


def test_rows_written_through_the_server_land_in_its_database(
    server: dict[str, Any], written: dict[str, Any]
) -> None:
    assert written["counts"] == {
        "pairs_screening_results": 3,
        "pairs_variance_stability": 3,
        "pairs_model_performance": 2,
    }
    direct = f"postgresql://postgres@127.0.0.1:5432/{server['db']}"
    rows = read_table(direct, "screening_results", where={"run_id": written["run_id"]})
    assert rows["statistic"].tolist() == [-4.2, -3.9, -1.1]
    assert rows["half_life"].tolist()[:2] == [7.5, float("inf")]  # infinity survives JSON
    assert rows["half_life"].isna().tolist() == [False, False, True]
    assert rows["rank"].tolist()[:2] == [1, 2]
    assert str(rows["window_end"].iloc[0]) == "2022-12-30"
    stability = read_table(direct, "variance_stability", where={"run_id": written["run_id"]})
    assert stability["arch_lags"].tolist() == [5, 5, 5]
    performance = read_table(direct, "model_performance", where={"model_name": written["model"]})
    assert performance[["y", "x", "trades"]].values.tolist() == [
        ["AAA", "BBB", 12],
        ["CCC", "AAA", 4],
    ]
    assert performance["f1"].isna().tolist() == [False, True]
    assert DB_SECRET not in server["log"].read_text()


@pytest.mark.parametrize("tables", ["auto", "server-url"])
def test_report_pairs_through_the_server_without_a_database_password(
    server: dict[str, Any], written: dict[str, Any], tmp_path: Path, tables: str
) -> None:
    config = _client_config(server, tmp_path, server["url"] if tables == "server-url" else tables)
    env = _client_env(
        server, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD
    )
    result = pairs_cli(
        "--config", str(config), "report", "pairs", "--format", "json", env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    through_server = pd.DataFrame(json.loads(result.stdout))
    direct = pair_report(f"postgresql://postgres@127.0.0.1:5432/{server['db']}")
    expected = pd.DataFrame(json.loads(direct.to_json(orient="records", date_format="iso")))
    pd.testing.assert_frame_equal(through_server, expected)
    assert through_server["pair"].tolist() == ["AAA/BBB", "AAA/CCC"]
    assert through_server["model_versions"].tolist() == [1, 1]
    assert through_server["sharpe"].tolist() == [1.4, -0.3]

    table = pairs_cli(
        "--config", str(config), "report", "pairs", "--sector", "technology", "--limit", "1",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "AAA/BBB" in table.stdout
    assert "AAA/CCC" not in table.stdout
    assert DB_SECRET not in result.stdout + result.stderr + table.stdout + table.stderr

    def since(value: str) -> list[str]:
        answer = pairs_cli(
            "--config", str(config), "report", "pairs", "--since", value, "--format", "csv",
            env=env, cwd=tmp_path,
        )  # fmt: skip
        assert answer.returncode == 0, answer.stderr
        return pd.read_csv(pd.io.common.StringIO(answer.stdout))["pair"].tolist()

    assert since("1d") == ["AAA/BBB", "AAA/CCC"]
    assert since("2999-01-01T00:00:00+02:00") == []


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, "requires a login; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        (
            {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "wrong-password-1"},
            "rejected the login of user 'admin'",
        ),
    ],
    ids=["no-login", "wrong-password"],
)
def test_report_without_a_valid_login_is_one_line_exit_2(
    server: dict[str, Any], tmp_path: Path, credentials: dict[str, str], message: str
) -> None:
    config = _client_config(server, tmp_path)
    result = pairs_cli(
        "--config", str(config), "report", "pairs", env=_client_env(server, **credentials),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert server["url"] in lines[0]
    assert "wrong-password-1" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_every_endpoint_needs_a_login(server: dict[str, Any]) -> None:
    url = server["url"]
    assert requests.get(f"{url}{STATUS_PATH}", timeout=10).status_code == 401
    assert requests.get(f"{url}{REPORT_PATH}", timeout=10).status_code == 401
    for path in (SCREENING_PATH, PERFORMANCE_PATH):
        assert requests.post(f"{url}{path}", json={}, timeout=10).status_code == 401
    status = requests.get(f"{url}{STATUS_PATH}", auth=("admin", ADMIN_PASSWORD), timeout=10)
    assert status.status_code == 200
    assert set(status.json()) == {"revision", "head"}


def test_status_names_the_revision(
    server: dict[str, Any], written: dict[str, Any], as_admin: None
) -> None:
    from mlflow_pairs.db import pairs_schema_status

    revision, head = fetch_status(server["url"])
    direct = pairs_schema_status(f"postgresql://postgres@127.0.0.1:5432/{server['db']}")
    assert (revision, head) == (direct.current, direct.head) == (direct.head, direct.head)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to"),
        ({"limit": "ten"}, "limit must be a whole number from 1 to"),
        ({"since": "yesterday"}, "since: 'yesterday' is neither a date"),
        ({"since": "999999999d"}, "reaches back before year 1"),
        ({"sectr": "technology"}, "unknown parameter(s) sectr"),
        ({"sector": "x" * 65}, "sector is longer than 64 characters"),
    ],
)
def test_bad_query_parameters_are_400_with_one_line(
    server: dict[str, Any], params: dict[str, str], message: str
) -> None:
    answer = requests.get(
        f"{server['url']}{REPORT_PATH}", params=params, auth=("admin", ADMIN_PASSWORD), timeout=10
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in body["message"]
    assert "\n" not in body["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the request body must be a JSON object"),
        ({"run_id": "r1", "screening_results": [{"y": "A"}]}, "screening_results[0].x is missing"),
        (
            {"run_id": "r1", "screening_results": [{"y": "A", "x": "B", "colour": 1}]},
            "unknown column(s) colour",
        ),
        (
            {"run_id": "r1", "variance_stability": [{"run_id": "r2", "y": "A", "x": "B"}]},
            "variance_stability[0].run_id is 'r2', not 'r1'",
        ),
        ({"screening_results": []}, "run_id must be a non-empty string"),
    ],
)
def test_bad_rows_are_400_with_one_line(server: dict[str, Any], body: Any, message: str) -> None:
    answer = requests.post(
        f"{server['url']}{SCREENING_PATH}", json=body, auth=("admin", ADMIN_PASSWORD), timeout=10
    )
    assert answer.status_code == 400
    assert message in answer.json()["message"]


def test_bad_dates_and_versions_are_400(server: dict[str, Any]) -> None:
    row = {"run_id": "r1", "pair": "A/B", "y": "A", "x": "B", "period_start": "2023-13-01",
           "period_end": "2023-06-30"}  # fmt: skip
    for body, message in [
        ({"name": "m", "version": 1, "rows": [row]}, "rows[0].period_start must be a date"),
        ({"name": "m", "version": "1", "rows": []}, "version must be a positive integer"),
        ({"name": "m", "version": 1, "rows": [{**row, "period_start": "2023-01-02",
          "trades": 1.5}]}, "rows[0].trades must be an integer"),
    ]:  # fmt: skip
        answer = requests.post(
            f"{server['url']}{PERFORMANCE_PATH}", json=body, auth=("admin", ADMIN_PASSWORD),
            timeout=10,
        )  # fmt: skip
        assert answer.status_code == 400, answer.text
        assert message.replace("rows[0]", "model_performance[0]") in answer.json()["message"]


def test_mlflow_permissions_apply_to_the_writes(
    server: dict[str, Any], written: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.server import get_app_client

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    auth = get_app_client("basic-auth", tracking_uri=server["url"])
    reader = f"reader_{uuid.uuid4().hex[:6]}"
    auth.create_user(reader, READER_PASSWORD)

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", reader)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", READER_PASSWORD)
    # Reading needs a login only (default permission READ).
    assert not pair_report(server["url"]).empty
    # Writing a run's rows needs permission to update the run; the model's, the model.
    with pytest.raises(TrackingConnectionError, match="denied it to this user"):
        record_screening(
            server["url"], written["run_id"], _screening_table(), arch_lags=5, ljung_box_lags=10
        )
    with pytest.raises(TrackingConnectionError, match="denied it to this user"):
        record_performance(
            server["url"], _performance_table(), model_name=written["model"], model_version=1,
            run_id=written["run_id"], sector="technology",
        )  # fmt: skip

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    auth.grant_user_permission(reader, "experiment", written["experiment_id"], "EDIT")
    auth.grant_user_permission(reader, "registered_model", written["model"], "EDIT")

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", reader)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", READER_PASSWORD)
    counts = record_screening(
        server["url"], written["run_id"], _screening_table(), arch_lags=5, ljung_box_lags=10
    )
    assert counts["pairs_screening_results"] == 3
    counts = record_performance(
        server["url"], _performance_table(), model_name=written["model"], model_version=1,
        run_id=written["run_id"], sector="technology",
    )  # fmt: skip
    assert counts == {"pairs_model_performance": 2}


def test_a_bad_value_from_the_client_is_a_usage_error(
    server: dict[str, Any], written: dict[str, Any], as_admin: None
) -> None:
    table = _screening_table().assign(y=["A" * 65, "CCC", "AAA"])
    with pytest.raises(UsageError, match=r"screening_results\[0\]\.y is longer than 64"):
        record_screening(server["url"], written["run_id"], table, arch_lags=5, ljung_box_lags=10)


def test_screen_writes_its_rows_through_the_server(server: dict[str, Any], tmp_path: Path) -> None:
    config = _client_config(server, tmp_path)
    env = _client_env(
        server, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD
    )
    result = pairs_cli(
        "--config", str(config), "screen", "--universe", "sample-technology",
        "--start", "2015-01-01", "--end", "2019-12-31", env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    wrote = "Wrote rows (3 to pairs_screening_results, 3 to pairs_variance_stability)"
    assert f"{wrote} in {server['url']}" in result.stdout
    run_id = result.stdout.split("Logged run ", 1)[1].split()[0]
    rows = read_table(
        f"postgresql://postgres@127.0.0.1:5432/{server['db']}",
        "screening_results",
        where={"run_id": run_id},
    )
    pairs = {frozenset(legs) for legs in zip(rows["y"], rows["x"], strict=True)}
    assert pairs == {frozenset(p) for p in [("AAPL", "AMD"), ("AAPL", "MSFT"), ("AMD", "MSFT")]}


def test_the_pairs_app_serves_the_tables_without_a_login(tmp_path: Path) -> None:
    """``--app-name pairs``: no login, on MLflow's SQLite store."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = write_config(
        tmp_path / "server.yaml",
        {"mlflow": {"backend_store_uri": store, "artifact_root": "file:./artifacts"}},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    exe = Path(sys.executable).with_name("mlflow-pairs")
    with log.open("w") as handle:
        process = subprocess.Popen(
            [str(exe), "--config", str(config), "server", "--port", str(port),
             "--app-name", "pairs"],
            stdout=handle, stderr=subprocess.STDOUT, env=env, text=True, cwd=tmp_path,
        )  # fmt: skip
    try:
        _wait_for(process, url, log)
        client = write_config(tmp_path / "client.yaml", {"mlflow": {"tracking_uri": url}})
        empty = pairs_cli("--config", str(client), "report", "pairs", env=env, cwd=tmp_path)
        assert empty.returncode == 0, empty.stderr
        assert f"No pair has been selected by screening ({url})" in empty.stdout
        run_id = MlflowClient(tracking_uri=url, registry_uri=url).create_run("0").info.run_id
        counts = record_screening(url, run_id, _screening_table(), arch_lags=5, ljung_box_lags=10)
        assert counts == {"pairs_screening_results": 3, "pairs_variance_stability": 3}
        report = pairs_cli(
            "--config", str(client), "report", "pairs", "--format", "csv", env=env, cwd=tmp_path
        )
        assert report.returncode == 0, report.stderr
        table = pd.read_csv(pd.io.common.StringIO(report.stdout))
        assert table["pair"].tolist() == ["AAA/BBB", "AAA/CCC"]
        pd.testing.assert_frame_equal(
            table, pd.read_csv(pd.io.common.StringIO(pair_report(store).to_csv(index=False)))
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
