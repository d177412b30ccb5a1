"""``screen --engine spark``: the pair matrix in symbol blocks, one Spark task per block pair.

The symbols are cut into blocks (:func:`mlflow_pairs.screening.blocks.plan_blocks`); the
task of block pair (i, j), i <= j, runs the screening kernel on the two blocks' log
prices alone (shipped once to each executor as a broadcast) and returns its pairs'
statistics. The driver puts them back in the candidate pairs' order and takes the
global step (Benjamini–Hochberg over *all* p-values, the filters, the ranking) exactly
as the local engine does, so the two give the same table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlflow_pairs.screening import ScreeningCriteria, ScreeningResult
from mlflow_pairs.screening.blocks import (
    FIELDS,
    BlockTask,
    KernelSettings,
    SymbolBlock,
    block_statistics,
    plan_blocks,
    symbol_block,
)
from mlflow_pairs.screening.engine import finish_screen, prepare_screen
from mlflow_pairs.spark.session import SparkJobError, first_line

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

__all__ = ["auto_block_size", "screen_spark"]

# Tasks per core the automatic block size aims at, so cores stay busy to the end.
_TASKS_PER_CORE = 3
_MIN_BLOCK, _MAX_BLOCK = 32, 1024


def screen_spark(
    spark: SparkSession,
    prices: pd.DataFrame,
    criteria: ScreeningCriteria | None = None,
    *,
    sectors: Mapping[str, str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    block_size: int | None = None,
) -> ScreeningResult:
    """:func:`mlflow_pairs.screening.screen` with the block pairs as Spark tasks.

    Parameters
    ----------
    spark : SparkSession
        Where the tasks run (see :func:`mlflow_pairs.spark.spark_session`).
    prices, criteria, sectors, pairs
        As for :func:`~mlflow_pairs.screening.screen`. ``criteria.device`` is resolved
        on the executors (``auto`` uses a GPU where an executor has one).
    block_size : int, optional
        Symbols per block; by default about three tasks per core.

    Returns
    -------
    ScreeningResult
        Equal to the local engine's, column for column.

    Raises
    ------
    SparkJobError
        A task failed; the message is the task's own error, one line.
    """
    criteria = criteria or ScreeningCriteria()
    prepared = prepare_screen(prices, criteria, sectors=sectors, pairs=pairs)
    if isinstance(prepared, ScreeningResult):
        return prepared
    n_symbols = prepared.log_prices.shape[1]
    size = block_size or auto_block_size(n_symbols, spark.sparkContext.defaultParallelism)
    plan = plan_blocks(prepared.a, prepared.b, n_symbols, size)
    means = prepared.log_prices.mean(axis=0)
    context = spark.sparkContext
    shared = context.broadcast((prepared.log_prices, means))
    tasks = [(task, plan.slices[task.first], plan.slices[task.second]) for task in plan.tasks]
    work = _BlockWork(shared, prepared.settings, criteria.device)
    try:
        results = context.parallelize(tasks, numSlices=len(tasks)).map(work).collect()
    except Exception as exc:
        raise SparkJobError(f"the Spark screening job failed: {first_line(exc)}") from None
    finally:
        shared.unpersist()
    stats: dict[str, np.ndarray] = {
        name: np.empty(len(prepared.a), dtype=dtype) for name, dtype in FIELDS.items()
    }
    for positions, values in results:
        for name, column in values.items():
            stats[name][positions] = column
    return finish_screen(prepared, stats, criteria, sectors)


def auto_block_size(n_symbols: int, cores: int) -> int:
    """Symbols per block so that the block pairs make about three tasks per core."""
    wanted = max(1, _TASKS_PER_CORE * max(1, cores))
    blocks = math.ceil((math.sqrt(8 * wanted + 1) - 1) / 2)  # k (k + 1) / 2 >= wanted
    size = math.ceil(n_symbols / blocks)
    return int(min(_MAX_BLOCK, max(_MIN_BLOCK, size)))


class _BlockWork:
    """One task: the statistics of a block pair, from the broadcast prices.

    A module-level class (pickled by reference), so executors import this module
    rather than receive a copy of the code.
    """

    def __init__(self, shared: Any, settings: KernelSettings, device: str) -> None:
        self.shared = shared
        self.settings = settings
        self.device = device

    def __call__(
        self, item: tuple[BlockTask, slice, slice]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        from mlflow_pairs.screening import get_backend

        task, first_columns, second_columns = item
        log_prices, means = self.shared.value
        backend = get_backend(self.device)

        def block(columns: slice) -> SymbolBlock:
            return symbol_block(backend, log_prices[:, columns], means[columns], self.settings)

        first = block(first_columns)
        second = first if task.diagonal else block(second_columns)
        stats = block_statistics(backend, first, second, task, self.settings, n_jobs=1)
        return task.positions, stats
