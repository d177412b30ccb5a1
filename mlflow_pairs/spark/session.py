"""The Spark session every Spark feature of mlflow-pairs shares.

The master comes from ``spark.master`` in the configuration (``local[*]`` by default) or
the command's ``--master``. Executors run the driver's Python interpreter unless
``PYSPARK_PYTHON`` says otherwise, so the same mlflow-pairs and NumPy do the work.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlflow_pairs.errors import MlflowPairsError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "INSTALL_HINT",
    "SparkJobError",
    "SparkUnavailableError",
    "check_master",
    "first_line",
    "require_pyspark",
    "session_scope",
    "spark_session",
]

#: How to get the optional dependency.
INSTALL_HINT = "pip install 'mlflow-pairs[spark]'"

#: Settings every new session gets unless the caller sets them: no console progress
#: bars (they would mix with the command's output).
DEFAULT_CONF: dict[str, str] = {"spark.ui.showConsoleProgress": "false"}


class SparkUnavailableError(MlflowPairsError):
    """PySpark is not installed, or Spark cannot start (no Java, a bad master)."""

    exit_code = 2


class SparkJobError(MlflowPairsError):
    """A Spark job failed; the message is the first line of the task's own error."""


def require_pyspark() -> None:
    """Raise :class:`SparkUnavailableError` saying how to install PySpark when it is
    missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            f"Spark support is not installed; install it with: {INSTALL_HINT}"
        ) from None


def spark_session(
    master: str | None = None,
    *,
    app_name: str = "mlflow-pairs",
    conf: Mapping[str, str] | None = None,
    quiet: bool = True,
) -> SparkSession:
    """The active Spark session, or a new one on ``master`` (``local[*]``, ``local[2]``,
    ``spark://host:7077``, ``yarn``, ``k8s://...``) with ``conf`` on top of
    :data:`DEFAULT_CONF`.

    With ``quiet`` (and no ``spark.driver.extraJavaOptions`` in ``conf``) a new
    session's JVM logs nothing: failures reach the caller as exceptions, whose message
    the CLI prints on one line.

    Raises
    ------
    SparkUnavailableError
        PySpark is missing, ``master`` is not a master URL, or the session cannot start.
    """
    require_pyspark()
    if master is not None:
        check_master(master)
    settings = {**DEFAULT_CONF, **(conf or {})}
    if quiet:
        settings.setdefault(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_quiet_logging()}"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with warnings.catch_warnings():
        # PySpark warns about pandas 3 on import; its pandas conversions are not used here.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        from pyspark.sql import SparkSession

        builder: Any = SparkSession.builder.appName(app_name)
        if master:
            builder = builder.master(master)
        for key, value in settings.items():
            builder = builder.config(key, value)
        try:
            return cast("SparkSession", builder.getOrCreate())
        except Exception as exc:
            where = f" on master {master}" if master else ""
            raise SparkUnavailableError(f"Spark cannot start{where}: {first_line(exc)}") from None


_MASTER = re.compile(
    r"^(local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn"
    r"|(spark|k8s|mesos)://\S+)$"
)

# log4j2 settings of a quiet driver: nothing logged (Spark still prints its two-line
# banner and the JVM a module notice).
_QUIET_LOG4J2 = """\
rootLogger.level = off
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


@functools.cache
def _quiet_logging() -> str:
    """A log4j2 configuration file for this process's JVM (removed at exit), as a URI."""
    handle, name = tempfile.mkstemp(prefix="mlflow-pairs-log4j2-", suffix=".properties")
    with os.fdopen(handle, "w") as file:
        file.write(_QUIET_LOG4J2)
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    return Path(name).as_uri()


@contextlib.contextmanager
def session_scope(master: str | None = None, **kwargs: Any) -> Iterator[SparkSession]:
    """:func:`spark_session` for one job: a session started here is stopped at the end;
    one that was already active (a notebook's, a test's) is left running."""
    require_pyspark()
    from pyspark.sql import SparkSession

    existing = SparkSession.getActiveSession()
    session = spark_session(master, **kwargs)
    try:
        yield session
    finally:
        if existing is None:
            session.stop()


def check_master(master: str) -> None:
    """Raise :class:`SparkUnavailableError` unless ``master`` looks like a master URL."""
    if not _MASTER.match(master):
        raise SparkUnavailableError(
            f"not a Spark master URL: {master!r} (local[*], local[N], spark://HOST:PORT, "
            "yarn or k8s://HOST:PORT)"
        )


def first_line(exc: BaseException) -> str:
    """The telling line of a (possibly Java-wrapped, multi-line) Spark error: the last
    Python exception line of a task's traceback, else the first non-empty line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    python = [
        line for line in lines if _EXCEPTION_LINE.match(line) and not line.startswith(_JVM_PREFIXES)
    ]
    if python:
        return python[-1]
    return lines[0] if lines else type(exc).__name__


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Warning): ")
_JVM_PREFIXES = ("org.", "java.", "scala.", "py4j.", "Caused by")
