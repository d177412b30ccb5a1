"""A full disk is one line naming where ("no space left on ..."), exit 2.

The disks are real: a small tmpfs mounted for the test (needs root; skipped otherwise,
saying so), filled during a run by a file written until the device refuses; and
``/dev/full``, which refuses every write, for the mapping of the error itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from mlflow import MlflowClient

from mlflow_pairs.db import create_database, upgrade_mlflow_schema
from mlflow_pairs.errors import NoSpaceError
from mlflow_pairs.tracking._space import storage_errors
from tests.conftest import free_port, start_pairs_server, write_config

SMALL = {
    "backtest": {"start": "2017-01-01", "formation_days": 504, "trading_days": 252,
                 "max_windows": 2},
    "ml": {"epochs": 3, "hidden_size": 8},
}  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def _copy_to_dev_full(tmp_path: Path) -> None:
    """What MLflow's local artifact repository does with an artifact: ``shutil.copy2``."""
    source = tmp_path / "prices.csv"
    source.write_text("date,AAPL\n2020-01-02,1.0\n")
    shutil.copy2(source, "/dev/full")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_write_refused_for_space_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(NoSpaceError) as info, storage_errors(None):
        _copy_to_dev_full(tmp_path)
    # The device refuses the write, but its file system has room, and the error names no
    # file (copying to a device does not say which): nothing more to name.
    assert str(info.value) == (
        "no space left on device (the error names no file, and the places this run writes to "
        "have room)"
    )
    assert info.value.exit_code == 2


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    """Write to ``folder`` until its file system refuses even one more byte."""
    with (folder / "filler").open("ab", buffering=0) as filler:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    filler.write(b"\0" * size)
            except OSError:
                continue


def _train(config: Path, cwd: Path) -> subprocess.Popen[str]:
    exe = str(Path(sys.executable).with_name("mlflow-pairs"))
    return subprocess.Popen(
        [exe, "--config", str(config), "train"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=cwd,
    )  # fmt: skip


def _runs(database: Path) -> list[str]:
    try:
        with sqlite3.connect(database) as connection:
            return [row[0] for row in connection.execute("SELECT status FROM runs")]
    except sqlite3.Error:
        return []


def _wait_for_a_run(process: subprocess.Popen[str], database: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not _runs(database):
        time.sleep(0.2)


def _one_error(process: subprocess.Popen[str]) -> str:
    _, err = process.communicate(timeout=600)
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert process.returncode == 2, err
    assert len(errors) == 1, err
    assert "Traceback" not in err
    return errors[0]


def test_a_full_artifact_root_is_refused_before_the_work(small_disk: Path, tmp_path: Path) -> None:
    _fill(small_disk)
    root = (small_disk / "mlruns").as_uri()
    store = tmp_path / "mlflow.db"
    config = write_config(
        tmp_path / "config.yaml",
        {**SMALL, "mlflow": {"tracking_uri": f"sqlite:///{store}", "artifact_root": root}},
    )
    error = _one_error(_train(config, tmp_path))
    assert error == (
        f"Error: no space left on {small_disk} (0 B free; mlflow.artifact_root {root}): a "
        "train run needs at least 2.0 MB there"
    )
    assert _runs(store) == []  # refused before any run


def test_an_artifact_root_that_fills_during_the_run(small_disk: Path, tmp_path: Path) -> None:
    root = (small_disk / "mlruns").as_uri()
    store = tmp_path / "mlflow.db"
    config = write_config(
        tmp_path / "config.yaml",
        {**SMALL, "mlflow": {"tracking_uri": f"sqlite:///{store}", "artifact_root": root}},
    )
    process = _train(config, tmp_path)
    _wait_for_a_run(process, store)
    _fill(small_disk)
    error = _one_error(process)
    assert error.startswith(f"Error: no space left on {small_disk} (0 B free")
    assert f"mlflow.artifact_root {root})" in error
    assert _runs(store) == ["FAILED"]


def test_a_sqlite_store_that_fills_during_the_run(small_disk: Path, tmp_path: Path) -> None:
    store = small_disk / "mlflow.db"
    config = write_config(
        tmp_path / "config.yaml",
        {**SMALL, "mlflow": {"tracking_uri": f"sqlite:///{store}",
                             "artifact_root": (tmp_path / "mlruns").as_uri()}},
    )  # fmt: skip
    process = _train(config, tmp_path)
    _wait_for_a_run(process, store)
    _fill(small_disk)
    error = _one_error(process)
    # SQLite gives its journal's pages back as the failed write rolls back, so how much
    # is free when the error is written, and whether that was enough to mark the run
    # FAILED, depends on the moment: the line must say which happened, truthfully.
    where = re.escape(str(small_disk))
    assert re.match(rf"Error: no space left on {where} \(\d+ [KMG]?B free, writing ", error)
    assert f"writing {store}" in error, error
    assert f"the tracking store {store}" in error, error
    left_running = "could not be marked FAILED and is left RUNNING" in error
    (small_disk / "filler").unlink()
    assert _runs(store) == (["RUNNING"] if left_running else ["FAILED"])
    shutil.rmtree(tmp_path / "mlruns", ignore_errors=True)


def _train_behind_server(
    small_disk: Path, store: str, tmp_path: Path, app_name: str, retries: dict[str, str]
) -> tuple[str, str]:
    """Train through ``mlflow-pairs server`` (app ``app_name``) whose artifact store is the
    full ``small_disk``: (the one error line, the server's address). The run ends FAILED."""
    create_database(store)
    upgrade_mlflow_schema(store)
    config = write_config(
        tmp_path / "config.yaml",
        {**SMALL, "mlflow": {"backend_store_uri": store,
                             "artifact_root": (small_disk / "artifacts").as_uri()},
         "server": {"app_name": app_name}},
    )  # fmt: skip
    server = start_pairs_server(config, free_port(), tmp_path / "server.log", _env())
    try:
        _fill(small_disk)
        env = {**_env(), "MLFLOW_TRACKING_URI": server.url, **retries}
        exe = str(Path(sys.executable).with_name("mlflow-pairs"))
        process = subprocess.Popen(
            [exe, "--config", str(config), "train"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        error = _one_error(process)
        client = MlflowClient(tracking_uri=server.url)
        experiment = client.get_experiment_by_name("pairs_trading")
        assert [r.info.status for r in client.search_runs([experiment.experiment_id])] == ["FAILED"]
        return error, server.url
    finally:
        server.process.send_signal(signal.SIGINT)
        server.process.wait(timeout=60)


@pytest.mark.postgres
@pytest.mark.server
def test_a_full_disk_behind_the_tracking_server(
    small_disk: Path, pg_admin: sqlalchemy.Engine, database_name: str, tmp_path: Path
) -> None:
    """`mlflow-pairs server` (its default app, ``pairs``) with its artifact store on the
    full disk answers an upload with HTTP 507 and the reason, which MLflow's client does not
    retry: with MLflow's own retry settings (minutes of retries for a 500), the run ends at
    once, FAILED, with one line saying the server's artifact store is full."""
    store = f"postgresql://postgres@127.0.0.1:5432/{database_name}"
    error, url = _train_behind_server(small_disk, store, tmp_path, "pairs", retries={})
    assert error == (
        f"Error: no space left on the tracking server {url}'s artifact store (it answered: "
        "No space left on device)"
    )
    # The first refused upload ended the run: answered 507 once, never retried (MLflow
    # retries a 500 up to 7 times, over 4 minutes) and never answered 500.
    uploads = [
        line for line in (tmp_path / "server.log").read_text().splitlines()
        if '"PUT /api/2.0/mlflow-artifacts/artifacts/' in line
    ]  # fmt: skip
    assert len(uploads) == 1, uploads
    assert uploads[0].endswith("507 Insufficient Storage"), uploads


@pytest.mark.postgres
@pytest.mark.server
def test_a_full_disk_behind_mlflows_own_server(
    small_disk: Path, pg_admin: sqlalchemy.Engine, database_name: str, tmp_path: Path
) -> None:
    """``server.app_name: mlflow`` (MLflow's server as it comes) answers HTTP 500 to each
    upload, which MLflow's client retries (here once, to keep the test short) and then
    reports as "too many 500 error responses" (or the connection the server closed). The
    run says what that most likely is, in one line, and ends FAILED."""
    store = f"postgresql://postgres@127.0.0.1:5432/{database_name}"
    retries = {
        # One quick retry instead of MLflow's minutes of them (a retry is also what
        # reopens the connection the server closes after refusing an upload).
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    }
    error, url = _train_behind_server(small_disk, store, tmp_path, "mlflow", retries)
    # The last try meets either the 500 or the connection the server then closed.
    assert error.startswith(
        f"Error: the tracking server {url} failed every try of storing this run's artifacts ("
    )
    assert error.endswith(
        ", after MLflow's retries): its artifact store is probably full or not writable "
        "(its log says which)"
    )
