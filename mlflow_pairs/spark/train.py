"""``train --engine spark``: one Spark task per sector, each training its sector's model.

The sectors are an RDD of their names with one name per partition, so each sector is one
task that Spark schedules on any free executor core. A task runs the same
:func:`mlflow_pairs.jobs.train.train_sector` as the local engine: it logs its own run
to the shared tracking server, registers its sector's model and writes its rows to the
project's tables; it sends back a :class:`~mlflow_pairs.jobs.train.SectorReport` (a few
plain values, never the model). A sector that fails is a report carrying its error line,
not a failed task, so the other sectors are trained all the same and Spark does not
retry a sector whose data are bad.

Why an RDD and not ``groupBy("sector").applyInPandas``: the input is a list of names and
the output one small row per sector. ``applyInPandas`` would shuffle them into
``spark.sql.shuffle.partitions`` hash partitions (two sectors may land in one task and
train one after the other) and convert both ends through Arrow for nothing;
``parallelize(sectors, len(sectors))`` gives exactly one task per sector.

Executors on other machines must reach the tracking server, so the tracking (and
registry) URI must be ``http(s)://``: a driver's SQLite file or ``./mlruns`` is refused
(:func:`require_tracking_server`), even on ``local[*]`` where it would work, to keep the
rule simple. The driver sends each task the loaded settings (they pickle; their copy of
the environment is cut to the variables that ``mlflow.backend_store_uri`` and
``tables.uri`` name) and the ``MLFLOW_*`` environment variables (MLflow's credentials,
TLS and retry settings, ``MLFLOW_PAIRS_*``), which the task sets while it runs. Nothing of
them is logged or printed. The executors need mlflow-pairs and the same sector plugins
installed, like the driver.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlflow_pairs._uris import is_http_uri, normalise_store_uri
from mlflow_pairs.errors import MlflowPairsError, UsageError
from mlflow_pairs.jobs.train import SectorOutcome, SectorReport, train_sector
from mlflow_pairs.secrets import (
    install_log_redaction,
    is_secret_name,
    mask_uri,
    register_secret,
    register_uri_password,
)
from mlflow_pairs.spark.session import SparkJobError, first_line

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from mlflow_pairs.config import Settings

__all__ = ["require_tracking_server", "task_environment", "task_settings", "train_spark"]

# MLflow's own URI variables are left out: the settings already hold their effect.
_NOT_SENT = frozenset({"MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"})
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def require_tracking_server(settings: Settings) -> None:
    """Raise :class:`~mlflow_pairs.errors.UsageError` unless runs and models go to a
    tracking server (``http(s)://``) that executors on other machines can reach."""
    tracking = normalise_store_uri(settings.mlflow.tracking_uri)
    registry = normalise_store_uri(settings.mlflow.registry_uri or settings.mlflow.tracking_uri)
    for key, uri in (("tracking_uri", tracking), ("registry_uri", registry)):
        if not is_http_uri(uri):
            raise UsageError(
                f"--engine spark needs a tracking server every executor can reach "
                f"(mlflow.{key} http(s)://HOST:PORT, e.g. `mlflow-pairs server`), not "
                f"{mask_uri(uri)}"
            )


def train_spark(
    spark: SparkSession,
    settings: Settings,
    sectors: Sequence[str],
    *,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> list[SectorReport]:
    """Train each sector in its own Spark task; one report per sector, in order.

    Parameters
    ----------
    spark : SparkSession
        Where the tasks run (see :func:`mlflow_pairs.spark.spark_session`).
    settings : Settings
        The configuration every task trains with; its tracking URI must be a server.
    sectors : sequence of str
        The sectors (each with a registered universe).
    symbols, start, end
        As for :func:`~mlflow_pairs.jobs.train.train_sector`.

    Returns
    -------
    list of SectorReport
        ``trained`` (run, registered version, promotion) or ``failed`` (its error line
        and exit status) for each sector.

    Raises
    ------
    UsageError
        The tracking or registry URI is not a server.
    SparkJobError
        The Spark job itself failed (not a sector: a lost executor, a worker that cannot
        import mlflow-pairs); the message is the first line of Spark's error.
    """
    require_tracking_server(settings)
    if not sectors:
        return []
    task = _Task(
        settings=task_settings(settings),
        environ=task_environment(),
        symbols=tuple(symbols) if symbols else None,
        start=start,
        end=end,
    )
    names = list(sectors)
    work = functools.partial(_train_task, task)
    try:
        rdd = spark.sparkContext.parallelize(names, numSlices=len(names))
        reports: list[SectorReport] = rdd.map(work).collect()
    except Exception as exc:
        raise SparkJobError(f"the Spark training job failed: {first_line(exc)}") from None
    return reports


def task_settings(settings: Settings) -> Settings:
    """``settings`` as sent to the tasks: the same values, with the environment copy
    (used to expand ``mlflow.backend_store_uri`` and ``tables.uri`` where the rows are
    written) cut to the variables those two name."""
    named = {
        match["name"]
        for template in (settings.mlflow.backend_store_uri, settings.tables.uri)
        for match in _VARIABLE.finditer(template)
    }
    sent = settings.model_copy()
    sent._environ = {k: v for k, v in settings._environ.items() if k in named}
    return sent


def task_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a task sets while it runs: ``MLFLOW_*`` of ``environ`` (this
    process's by default) except the tracking and registry URIs."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if k.startswith("MLFLOW_") and k not in _NOT_SENT}


@dataclass(frozen=True)
class _Task:
    """What every task gets from the driver."""

    settings: Settings
    environ: dict[str, str]
    symbols: tuple[str, ...] | None
    start: Any
    end: Any


def _train_task(task: _Task, sector: str) -> SectorReport:
    """One sector's task. A module-level function (pickled by reference), so executors
    import this module rather than receive a copy of the code."""
    with _environment(task.environ):
        _hide_secrets(task)
        try:
            training = train_sector(
                task.settings, sector, symbols=task.symbols, start=task.start, end=task.end
            )
        except MlflowPairsError as exc:
            return SectorReport.failed(sector, str(exc), exc.exit_code)
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            detail = f": {lines[0]}" if lines else ""
            return SectorReport.failed(sector, f"unexpected {type(exc).__name__}{detail}", 1)
        return SectorOutcome(sector, training=training).report()


def _hide_secrets(task: _Task) -> None:
    """This worker's logs and the report's error line mask what the driver's would: the
    secret variables and the passwords of the settings' URIs."""
    install_log_redaction()
    for name, value in {**task.environ, **task.settings._environ}.items():
        if is_secret_name(name):
            register_secret(value)
    mlflow = task.settings.mlflow
    for uri in (mlflow.tracking_uri, mlflow.registry_uri, task.settings.tables.uri):
        register_uri_password(uri)


@contextlib.contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` set in ``os.environ`` for the block (a Python worker runs several
    tasks one after the other: each finds the environment it started with)."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
