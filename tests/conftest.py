"""Shared fixtures: real PostgreSQL databases, free ports, config files, a real server.

PostgreSQL: the tests use the server at ``$MLFLOW_PAIRS_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432``, a user who may create databases) and create and
drop their own databases there; ``off`` says there is none. Tests that need it carry the
``postgres`` mark (given here to every test that uses the database fixtures): deselect them
with ``-m "not postgres"``. When no server answers they are skipped with a one-line reason,
except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import functools
import os
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
from urllib.parse import urlsplit

import pytest
import sqlalchemy
import yaml

from mlflow_pairs.secrets import mask_uri

#: Environment variable naming the PostgreSQL server of the tests (no database part).
PG_URL_VARIABLE = "MLFLOW_PAIRS_TEST_PG_URL"
PG_URL = (
    os.environ.get(PG_URL_VARIABLE)
    # The older name, an administrative URI with its database.
    or os.environ.get("MLFLOW_PAIRS_TEST_PG")
    or "postgresql://postgres@127.0.0.1:5432"
)
#: Fixtures that reach the server: a test using one gets the ``postgres`` mark.
PG_FIXTURES = frozenset({"pg_admin", "database_name"})
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def in_ci() -> bool:
    """Whether this runs in CI (``CI=true``, as .ci/run and GitHub Actions set)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pg_url(
    database: str = "postgres", *, driver: str | None = None, password: str | None = None
) -> str:
    """The URI of ``database`` on the test server.

    ``driver`` (``psycopg2``) makes ``postgresql+psycopg2://``; ``password`` (a value, or a
    ``${VARIABLE}`` reference for a configuration file) replaces the server URL's own.
    """
    parts = urlsplit(PG_URL)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, own_password = userinfo.partition(":")
    secret = own_password if password is None else password
    credentials = f"{user}:{secret}@" if secret else (f"{user}@" if user else "")
    scheme = "postgresql" + (f"+{driver}" if driver else "")
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{credentials}{host}/{database}{query}"


#: The server's maintenance database, for creating and dropping the tests' own.
PG_ADMIN_URI = pg_url("postgres")


@functools.cache
def postgres_problem() -> str | None:
    """Why the test server cannot be used (one line), or None when it answers."""
    if PG_URL.strip().lower() == "off":
        return f"no PostgreSQL for the tests ({PG_URL_VARIABLE}=off)"
    engine = sqlalchemy.create_engine(PG_ADMIN_URI, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        detail = reason[0][:160] if reason else type(exc).__name__
        return (
            f"PostgreSQL at {mask_uri(PG_URL)} is not answering ({mask_uri(detail)}); "
            f"set {PG_URL_VARIABLE} to a server where the user may create databases"
        )
    finally:
        engine.dispose()
    return None


def require_postgres() -> None:
    """Skip the test when the server does not answer; fail instead in CI."""
    problem = postgres_problem()
    if problem is None:
        return
    if in_ci():
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgres") is not None:
        require_postgres()


def console_script(name: str) -> Path:
    """An installed console script of this environment (``mlflow-pairs``), on any platform."""
    suffix = ".exe" if sys.platform == "win32" else ""
    return Path(sys.executable).with_name(name + suffix)


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
    """The test server (see the module's description): skipped when it does not answer,
    failed in CI."""
    require_postgres()
    engine = _admin_engine()
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
    exe = console_script("mlflow-pairs")
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
    if sys.platform == "win32" or os.geteuid() != 0 or not (PG_BIN / "initdb").exists():
        pytest.skip("needs root and PostgreSQL's initdb to start a password-checking cluster")
    import pwd  # POSIX only

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

    exe = console_script("mlflow-pairs")
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


@contextlib.contextmanager
def mlflow_uris_restored() -> Iterator[None]:
    """Put MLflow's global tracking and registry URIs (and the variables its setters write)
    back as they were, *unset* included.

    ``mlflow.set_tracking_uri(mlflow.get_tracking_uri())`` is not a restore: when no URI
    was set, ``get_tracking_uri()`` answers the default (``sqlite:///mlflow.db`` in the
    working directory) and setting it makes later code create that file in the checkout.
    """
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved = tracking_utils._tracking_uri, registry_utils._registry_uri
    # MLflow's setters also write these variables, which later subprocesses inherit.
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    environ = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local[2] Spark session shared by a test module (starting one takes seconds)."""
    pytest.importorskip("pyspark")  # the optional extra (in the dev extra)
    from mlflow_pairs.spark import spark_session

    session = spark_session(
        "local[2]",
        app_name="mlflow-pairs tests",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"},
    )
    yield session
    session.stop()
