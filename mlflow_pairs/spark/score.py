"""``score --engine spark``: each sector group's request scored by a Spark task.

The driver plans the job as the local engine does (:func:`mlflow_pairs.jobs.score.
plan_scoring`: the file read and checked, each group cut to the history its model needs,
aliases resolved to versions), so bad input fails before any task starts. The requests
become one long Spark DataFrame (group, sector, model URI, date, symbol, price), grouped
by group, sector and model; ``applyInPandas`` runs :func:`_score_group` on each group,
which loads the model's pyfunc from the registry (the tracking and registry URIs are
passed to it, not taken from the executor's environment) once per Python worker and
calls the same :func:`~mlflow_pairs.jobs.score.predict_group` as the local engine. The
rows come back in the local engine's order, equal to its output.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from mlflow_pairs.jobs.score import (
    ScoringPlan,
    empty_output,
    load_scoring_model,
    output_frame,
    predict_group,
)
from mlflow_pairs.model import OUTPUT_COLUMNS
from mlflow_pairs.spark.session import SparkJobError, first_line

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["INPUT_SCHEMA", "OUTPUT_SCHEMA", "score_spark", "scored_frame"]

#: Spark types of the pyfunc's output columns; naive timestamps (no time-zone shifts).
_OUTPUT_TYPES = {"pair": "string", "y": "string", "x": "string", "date": "timestamp_ntz"}
_OUTPUT_TYPES["signal"] = "bigint"

#: The requests, one row per group, date and symbol.
INPUT_SCHEMA = (
    "group_id int, sector string, model_uri string, date timestamp_ntz, symbol string, price double"
)
#: The pyfunc's rows, with where each came from (group, and row within the group's output).
OUTPUT_SCHEMA = ", ".join(
    [f"{column} {_OUTPUT_TYPES.get(column, 'double')}" for column in OUTPUT_COLUMNS]
    + ["group_id int", "row_id bigint"]
)
_KEYS = ["group_id", "sector", "model_uri"]


def scored_frame(spark: SparkSession, plan: ScoringPlan) -> DataFrame:
    """The plan's requests as a Spark DataFrame, scored lazily: :data:`OUTPUT_SCHEMA`
    (the pyfunc's columns, ``group_id`` and ``row_id``). Nothing runs until an action."""
    requests = pd.concat(
        [
            group.prices.rename_axis("date")
            .rename_axis(columns="symbol")
            .stack()
            .rename("price")
            .reset_index()
            .assign(group_id=number, sector=group.sector, model_uri=group.model_uri)
            for number, group in enumerate(plan.groups)
        ],
        ignore_index=True,
    )
    columns = [c.split()[0] for c in INPUT_SCHEMA.split(", ")]
    frame = spark.createDataFrame(requests[columns], schema=INPUT_SCHEMA)
    task = _Task(plan.tracking_uri, plan.registry_uri, plan.params)
    work = functools.partial(_score_group, task)
    with warnings.catch_warnings():
        # PySpark cannot read a partial's type hints; it takes (key, rows) from its arity.
        warnings.filterwarnings("ignore", "Cannot infer the eval type", UserWarning)
        return frame.groupBy(*_KEYS).applyInPandas(work, schema=OUTPUT_SCHEMA)


def score_spark(spark: SparkSession, plan: ScoringPlan) -> pd.DataFrame:
    """:func:`mlflow_pairs.jobs.score.score_local` with the groups scored by Spark tasks
    (``applyInPandas``): the same rows in the same order.

    Raises
    ------
    SparkJobError
        A task failed; the message is the task's own error, one line.
    """
    if not plan.groups:
        return empty_output()
    try:
        with _quiet_pandas_conversions():
            collected = cast(pd.DataFrame, scored_frame(spark, plan).toPandas())
    except Exception as exc:
        raise SparkJobError(f"the Spark scoring job failed: {first_line(exc)}") from None
    ordered = collected.sort_values(["group_id", "row_id"], kind="stable")
    return _conform(ordered.drop(columns=["group_id", "row_id"]).reset_index(drop=True))


@contextlib.contextmanager
def _quiet_pandas_conversions() -> Iterator[None]:
    """PySpark's warnings about its pandas conversions, not shown: it warns about pandas
    3 (the tests check these conversions give the local rows exactly), about pandas 3's
    deprecated ``copy`` keyword it passes, and repeats a failed task's traceback, which
    :class:`SparkJobError` reports in one line."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        warnings.filterwarnings("ignore", "The copy keyword is deprecated", module="pyspark")
        warnings.filterwarnings("ignore", "toPandas attempted Arrow optimization", UserWarning)
        yield


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """The local engine's column types (Spark gives text and timestamps its own)."""
    return output_frame({column: frame[column].to_numpy() for column in OUTPUT_COLUMNS})


@dataclass(frozen=True)
class _Task:
    """What every task needs from the driver: where the models are, and the params."""

    tracking_uri: str
    registry_uri: str
    params: dict[str, Any]


def _score_group(task: _Task, key: tuple[Any, ...], rows: pd.DataFrame) -> pd.DataFrame:
    """One group's task: its request back to the wide form, scored by its model.

    ``key`` is the group's (``group_id``, ``sector``, ``model_uri``). A module-level
    function (pickled by reference), so executors import this module and keep its model
    cache between tasks.
    """
    number, _, uri = key
    model = _model(uri, task.tracking_uri, task.registry_uri)
    prices = rows.pivot(index="date", columns="symbol", values="price").sort_index()
    prices.index = pd.DatetimeIndex(prices.index, name="date").as_unit("ns")
    prices.columns.name = None
    scored = predict_group(model, prices.astype("float64"), task.params)
    return scored.assign(group_id=int(number), row_id=range(len(scored)))


# The models this Python worker has loaded, by (model URI, tracking URI, registry URI):
# each is loaded once per worker, however many of its groups the worker scores.
_MODELS: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def _model(uri: str, tracking_uri: str, registry_uri: str) -> Any:
    key = (uri, tracking_uri, registry_uri)
    with _LOCK:
        if key not in _MODELS:
            with _mlflow_uris(tracking_uri, registry_uri):
                _MODELS[key] = load_scoring_model(uri)
        return _MODELS[key]


@contextlib.contextmanager
def _mlflow_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """MLflow's tracking and registry URIs set to the driver's for the block."""
    import mlflow

    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
