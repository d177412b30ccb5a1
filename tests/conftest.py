"""Shared fixtures: real PostgreSQL databases, free ports, config files, a real server."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
import yaml

#: The PostgreSQL server the machine runs (trust auth). Tests create their own databases.
PG_ADMIN_URI = os.environ.get(
    "MLFLOW_PAIRS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _admin_engine() -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(PG_ADMIN_URI, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sqlalchemy.Engine]:
    """The machine's PostgreSQL; fails loudly when it is down (CI starts it)."""
    engine = _admin_engine()
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URI} is not answering: {exc}")
    yield engine
    engine.dispose()


def drop_database(engine: sqlalchemy.Engine, name: str) -> None:
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_name(pg_admin: sqlalchemy.Engine) -> Iterator[str]:
    """A unique database name, dropped after the test (the test creates it)."""
    name = f"mlflow_pairs_test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_database(pg_admin, name)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in an empty folder with none of the variables this package reads set."""
    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "MLFLOW_PAIRS_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pairs_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``mlflow-pairs`` console script."""
    exe = Path(sys.executable).with_name("mlflow-pairs")
    return subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def password_postgres() -> Iterator[dict[str, Any]]:
    """A private PostgreSQL cluster that checks passwords (scram-sha-256).

    The machine's server trusts every local connection, so a wrong password could not fail
    there. Needs root (to run the server as the ``postgres`` user) and the server binaries.
    """
    if os.geteuid() != 0 or not (PG_BIN / "initdb").exists():
        pytest.skip("needs root and PostgreSQL's initdb to start a password-checking cluster")
    password = f"pw-{uuid.uuid4().hex}"
    # pytest's own temporary folders are private to root; the server's user must reach this.
    root = Path(tempfile.mkdtemp(prefix="mlflow-pairs-pg-"))
    root.chmod(0o755)
    data = root / "data"
    pwfile = root / "pwfile"
    pwfile.write_text(password)
    postgres_user = pwd.getpwnam("postgres")
    for path in (root, pwfile):
        os.chown(path, postgres_user.pw_uid, postgres_user.pw_gid)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield {"port": port, "password": password}
    finally:
        subprocess.run(
            [*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


class ServerProcess:
    """``mlflow-pairs server`` running as a subprocess, with its output collected."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_pairs_server(
    config: Path, port: int, log: Path, env: dict[str, str], timeout: float = 180
) -> ServerProcess:
    import requests

    exe = Path(sys.executable).with_name("mlflow-pairs")
    handle = log.open("w")
    process = subprocess.Popen(
        [str(exe), "--config", str(config), "server", "--port", str(port)],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        cwd=config.parent,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        if "MLflow UI:" in log.read_text(errors="replace"):
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return ServerProcess(process, url, log)
            except requests.RequestException:
                pass
        time.sleep(0.5)
    process.kill()
    raise AssertionError(f"server did not come up:\n{log.read_text()}")
