"""``mlflow-pairs server`` on a real PostgreSQL store, used through the connection manager."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests
import sqlalchemy

from mlflow_pairs.config import load_settings
from mlflow_pairs.db import create_database, upgrade_mlflow_schema
from mlflow_pairs.secrets import mask_uri
from mlflow_pairs.tracking import MlflowConnection
from tests.conftest import (
    ServerProcess,
    drop_database,
    free_port,
    pairs_cli,
    pg_url,
    start_pairs_server,
    write_config,
)

pytestmark = [pytest.mark.postgres, pytest.mark.server]

SECRET = f"srv-secret-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def server(
    pg_admin: sqlalchemy.Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A server on a fresh database whose URI carries a password (ignored by trust auth, so
    the test can look for it in everything the server and the client write)."""
    name = f"mlflow_pairs_test_{uuid.uuid4().hex[:12]}"
    workdir = tmp_path_factory.mktemp("server")
    store = pg_url(name, password=SECRET)
    create_database(store)
    upgrade_mlflow_schema(store)
    config = write_config(
        workdir / "config.yaml",
        {
            "mlflow": {
                "backend_store_uri": pg_url(name, password="${MLFLOW_DB_PASSWORD}"),
                "artifact_root": "file:./artifacts",
            }
        },
    )
    env = {**os.environ, "MLFLOW_DB_PASSWORD": SECRET}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = start_pairs_server(config, free_port(), workdir / "server.log", env)
    info = {
        "process": process,
        "url": process.url,
        "db": name,
        "config": config,
        "workdir": workdir,
    }
    try:
        yield info
    finally:
        if process.process.poll() is None:
            process.process.send_signal(signal.SIGINT)
            info["exit"] = process.process.wait(timeout=60)
        drop_database(pg_admin, name)


@pytest.fixture
def connection(server: dict[str, Any], tmp_path: Path) -> MlflowConnection:
    config = write_config(
        tmp_path / "client.yaml",
        {
            "mlflow": {
                "tracking_uri": server["url"],
                "experiment_name": f"exp_{uuid.uuid4().hex[:8]}",
                "backend_store_uri": "postgresql://postgres:${MLFLOW_DB_PASSWORD}@h/db",
            }
        },
    )
    settings = load_settings(config, environ={"MLFLOW_DB_PASSWORD": SECRET})
    return MlflowConnection(settings)


def _db(server: dict[str, Any]) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(pg_url(server["db"]))


def test_run_is_visible_through_rest_and_in_the_database(
    server: dict[str, Any], connection: MlflowConnection
) -> None:
    connection.check()
    with connection.start_run(sector="technology", run_name="visible") as run:
        mlflow.log_param("window", 252)
        mlflow.log_metric("sharpe", 1.25)
        mlflow.log_text("artifact body", "report/summary.txt")
    run_id = run.info.run_id

    answer = requests.get(
        f"{server['url']}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=10
    )
    assert answer.status_code == 200
    data = answer.json()["run"]["data"]
    assert {"key": "window", "value": "252"} in data["params"]
    assert [m["value"] for m in data["metrics"] if m["key"] == "sharpe"] == [1.25]
    assert {"key": "mlflow_pairs.sector", "value": "technology"} in data["tags"]

    engine = _db(server)
    with engine.connect() as db:
        status = db.execute(
            sqlalchemy.text("SELECT status FROM runs WHERE run_uuid = :r"), {"r": run_id}
        ).scalar()
        value = db.execute(
            sqlalchemy.text("SELECT value FROM metrics WHERE run_uuid = :r AND key = 'sharpe'"),
            {"r": run_id},
        ).scalar()
    engine.dispose()
    assert status == "FINISHED"
    assert value == 1.25
    # Artifacts went through the server's proxy into the configured root.
    stored = list((server["workdir"] / "artifacts").rglob("summary.txt"))
    assert [p.read_text() for p in stored] == ["artifact body"]


class _Constant(mlflow.pyfunc.PythonModel):
    # No type hints: MLflow would try to infer a signature from them.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return model_input


def test_alias_round_trip_on_a_registered_model(
    server: dict[str, Any], connection: MlflowConnection
) -> None:
    name = connection.model_name(f"test_{uuid.uuid4().hex[:6]}")
    with connection.start_run(sector="technology"):
        info = connection.log_model(
            mlflow.pyfunc,
            name="model",
            python_model=_Constant(),
            pip_requirements=["mlflow"],
            registered_model_name=name,
        )
    first = connection.get_version(name, info.registered_model_version)
    second_version = mlflow.register_model(info.model_uri, name).version
    connection.tag_version(name, second_version, {"note": "second"})
    second = connection.get_version(name, second_version)
    assert second.tags == {"note": "second"}
    assert [v.version for v in connection.list_versions(name)] == [second.version, first.version]

    challenger = connection.settings.model_registry.challenger_alias
    assert connection.get_alias(name, challenger) is None
    connection.set_alias(name, challenger, second.version)
    assert connection.get_alias(name, challenger).version == second.version

    connection.promote(name, first.version, reason="gates passed")
    champion = connection.get_alias(name, "champion")
    assert champion.version == first.version
    assert champion.tags["mlflow_pairs.promotion"] == "gates passed"
    # The alias is MLflow's, readable by any MLflow client through the server.
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert loaded.metadata.run_id == info.run_id


def test_no_secret_in_params_tags_logs_or_config_show(
    server: dict[str, Any], connection: MlflowConnection, capfd: pytest.CaptureFixture[str]
) -> None:
    with connection.start_run(sector="technology") as run:
        connection.log_settings()
    stored = connection.client.get_run(run.info.run_id)
    assert stored.data.params["config.mlflow.backend_store_uri"] == (
        "postgresql://postgres:***@h/db"
    )
    everything = repr(stored.data.params) + repr(stored.data.tags)
    assert SECRET not in everything

    shown = pairs_cli(
        "--config",
        str(server["config"]),
        "config",
        "show",
        env={**os.environ, "MLFLOW_DB_PASSWORD": SECRET},
    )
    assert shown.returncode == 0
    assert mask_uri(pg_url("", password=SECRET)) in shown.stdout
    assert SECRET not in shown.stdout + shown.stderr
    assert SECRET not in server["process"].output()
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err


def test_train_against_the_postgresql_backed_server(server: dict[str, Any], tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "train.yaml",
        {
            "mlflow": {"tracking_uri": server["url"], "experiment_name": "train_on_server"},
            "backtest": {
                "start": "2018-01-01",
                "formation_days": 504,
                "trading_days": 252,
                "max_windows": 1,
            },
            "ml": {"epochs": 2, "hidden_size": 8},
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = pairs_cli("--config", str(config), "train", env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    # `mlflow-pairs server` serves the project's tables (its default app, pairs): the rows
    # go through it, and the client needs no database password (none is set here).
    assert "Warning" not in result.stderr, result.stderr
    connection = MlflowConnection(load_settings(config, environ={}))
    version = connection.get_alias("pairs_trading_gru_garch_technology", "challenger")
    assert version is not None
    run = connection.client.get_run(version.run_id)
    assert "garch_gru_sharpe" in run.data.metrics
    engine = _db(server)
    with engine.connect() as db:
        stored = db.execute(
            sqlalchemy.text("SELECT COUNT(*) FROM model_versions WHERE run_id = :r"),
            {"r": version.run_id},
        ).scalar()
        screened = db.execute(
            sqlalchemy.text(
                "SELECT COUNT(*) FROM mlflow_pairs.pairs_screening_results WHERE run_id = :r"
            ),
            {"r": version.run_id},
        ).scalar()
    engine.dispose()
    assert stored == 1
    assert screened > 0
    local = mlflow.artifacts.download_artifacts(
        f"runs:/{version.run_id}/backtest/positions.csv", tracking_uri=server["url"]
    )
    assert Path(local).stat().st_size > 0


def test_screen_through_the_server_writes_rows_to_its_database(
    server: dict[str, Any], tmp_path: Path
) -> None:
    """With tracking over HTTP, the project's tables go to mlflow.backend_store_uri (the
    server's database), with the run id the server recorded; no password is printed."""
    from tests._tables import read_table

    config = write_config(
        tmp_path / "client.yaml",
        {
            "mlflow": {
                "tracking_uri": server["url"],
                "backend_store_uri": pg_url(server["db"], password="${MLFLOW_DB_PASSWORD}"),
            }
        },
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DB_PASSWORD"] = SECRET
    result = pairs_cli(
        "--config", str(config), "screen", "--universe", "sample-health_care",
        "--start", "2005-01-01", "--end", "2009-12-31", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "Wrote rows (10 to pairs_screening_results, 10 to pairs_variance_stability)" in (
        result.stdout
    )
    run_id = result.stdout.split("Logged run ")[1].split()[0]
    rows = read_table(
        pg_url(server["db"]),
        "screening_results",
        where={"run_id": run_id},
    )
    assert len(rows) == 10
    answer = requests.get(
        f"{server['url']}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=10
    )
    metrics = {m["key"]: m["value"] for m in answer.json()["run"]["data"]["metrics"]}
    assert metrics["pairs_tested"] == 10
    assert metrics["min_pvalue"] == pytest.approx(rows["p_value"].min(), rel=1e-12)


def test_server_refuses_a_non_loopback_host(server: dict[str, Any]) -> None:
    result = pairs_cli(
        "--config",
        str(server["config"]),
        "server",
        "--host",
        "0.0.0.0",  # noqa: S104 - the point is that it is refused
        env={**os.environ, "MLFLOW_DB_PASSWORD": SECRET},
        timeout=60,
    )
    assert result.returncode == 1
    assert "not a loopback address" in result.stderr
    assert "--allow-remote" in result.stderr


def test_server_stops_cleanly_on_ctrl_c(server: dict[str, Any]) -> None:
    process: ServerProcess = server["process"]
    process.process.send_signal(signal.SIGINT)
    assert process.process.wait(timeout=60) == 0
    output = process.output()
    assert "Stopped." in output
    assert "Traceback" not in output
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server['url']}/health", timeout=5)


# --- The server's process tree dies with ``mlflow-pairs server``; a busy port is refused ---
#
# These start their own servers on fresh databases. Processes are found through /proc, so
# they run on Linux only (where CI has PostgreSQL); tests/tracking/test_supervise.py checks
# the supervisor itself on every platform.

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="inspects processes through /proc"
)


def _proc_stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, pgid, start time) of a live process, or None (gone or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2]), fields[19]


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _tree(root: int) -> dict[int, str]:
    """The live descendants of ``root`` (not root itself): pid -> start time."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None:
            parents.setdefault(stat[0], []).append(pid)
            starts[pid] = stat[2]
    found: dict[int, str] = {}
    todo = list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in starts and pid not in found:
            found[pid] = starts[pid]
            todo.extend(parents.get(pid, []))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _survivors(tree: dict[int, str], groups: set[int]) -> list[str]:
    """Processes of a snapshot still alive, or any live process in one of its groups."""
    alive = []
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is None:
            continue
        if tree.get(pid) == stat[2] or stat[1] in groups:
            alive.append(f"{pid} {_cmdline(pid)[:120]}")
    return alive


def _listening(port: int) -> bool:
    """Whether any socket on this machine listens on TCP ``port`` (IPv4 or IPv6)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return bool(predicate())


def _own_server(workdir: Path, database_name: str) -> Path:
    store = pg_url(database_name)
    create_database(store)
    upgrade_mlflow_schema(store)
    return write_config(
        workdir / "config.yaml",
        {"mlflow": {"backend_store_uri": store, "artifact_root": "file:./artifacts"}},
    )


def _server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def _kill_leftovers(tree: dict[int, str]) -> None:
    for pid, start in tree.items():
        stat = _proc_stat(pid)
        if stat is not None and stat[2] == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stop(process: ServerProcess) -> None:
    if process.process.poll() is None:
        process.process.send_signal(signal.SIGINT)
        process.process.wait(timeout=60)


@needs_proc
def test_kill_9_of_the_server_command_takes_its_whole_tree_down(
    database_name: str, tmp_path: Path
) -> None:
    config = _own_server(tmp_path, database_name)
    port = free_port()
    process = start_pairs_server(config, port, tmp_path / "first.log", _server_env())
    tree: dict[int, str] = {}
    try:
        tree = _tree(process.process.pid)
        groups = {stat[1] for pid in tree if (stat := _proc_stat(pid)) is not None}
        groups.discard(os.getpgrp())
        assert any("uvicorn" in _cmdline(pid) or "gunicorn" in _cmdline(pid) for pid in tree)

        process.process.kill()  # SIGKILL: no handler of ours runs
        process.process.wait(timeout=10)
        assert _until(lambda: not _listening(port), 60), "the port is still served"
        assert _until(lambda: not _survivors(tree, groups), 60), _survivors(tree, groups)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        _kill_leftovers(tree)  # never leave a test's server behind

    again = start_pairs_server(config, port, tmp_path / "second.log", _server_env())
    try:
        assert requests.get(f"{again.url}/health", timeout=10).status_code == 200
        assert "stopped unexpectedly" not in again.output()
    finally:
        _stop(again)
    assert again.process.returncode == 0, again.output()


@needs_proc
def test_dead_workers_are_reported_and_the_tree_goes_with_the_server(
    database_name: str, tmp_path: Path
) -> None:
    config = _own_server(tmp_path, database_name)
    port = free_port()
    process = start_pairs_server(config, port, tmp_path / "server.log", _server_env())
    tree: dict[int, str] = {}
    try:
        tree = _tree(process.process.pid)
        groups = {stat[1] for pid in tree if (stat := _proc_stat(pid)) is not None}
        groups.discard(os.getpgrp())
        job_runner = [pid for pid in tree if "mlflow.server.jobs._job_runner" in _cmdline(pid)]
        web = [pid for pid in tree if " -m uvicorn " in _cmdline(pid)]
        assert len(job_runner) == 1
        assert len(web) == 1

        # A helper process dying while the server goes on is reported, not silent.
        os.kill(job_runner[0], signal.SIGKILL)
        assert _until(
            lambda: (
                f"process {job_runner[0]} (mlflow.server.jobs._job_runner) exited"
                in process.output()
            ),
            15,
        ), process.output()[-2000:]
        assert requests.get(f"{process.url}/health", timeout=10).status_code == 200
        assert process.process.poll() is None

        # The web server dying stops the command with an error naming it.
        os.kill(web[0], signal.SIGKILL)
        assert process.process.wait(timeout=60) == 1
        output = process.output()
        assert f"process {web[0]} (uvicorn) exited" in output
        assert "Error: mlflow server stopped unexpectedly" in output
        assert "Traceback" not in output
        assert _until(lambda: not _listening(port), 20)
        assert _until(lambda: not _survivors(tree, groups), 20), _survivors(tree, groups)
    finally:
        _stop(process)
        _kill_leftovers(tree)


@pytest.mark.parametrize("listen", [True, False], ids=["listening", "bound"])
def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path, listen: bool) -> None:
    config = write_config(
        tmp_path / "config.yaml",
        {
            "mlflow": {
                "backend_store_uri": pg_url("never_created"),
                "artifact_root": "file:./artifacts",
            }
        },
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        if listen:
            busy.listen()
        port = busy.getsockname()[1]
        result = pairs_cli(
            "--config", str(config), "server", "--port", str(port),
            env=_server_env(), cwd=tmp_path, timeout=60,
        )  # fmt: skip
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert f"127.0.0.1:{port}" in errors[0]
    assert "in use" in errors[0]
    assert "MLflow UI" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
