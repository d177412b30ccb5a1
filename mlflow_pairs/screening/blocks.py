"""The pair matrix split into symbol blocks, and the statistics of each block pair.

Symbols are cut into blocks of ``block_size`` by their position; the pair (a, b) belongs
to the block pair (block of min(a, b), block of max(a, b)). :func:`block_statistics`
computes every pair of one block pair from the two blocks' log prices alone, so the
blocks can run in this process (:func:`pair_statistics`) or as Spark tasks
(:mod:`mlflow_pairs.spark.screen`) with the same results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mlflow_pairs.screening import _kernel
from mlflow_pairs.screening._backend import Backend, NumpyBackend, get_backend

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "FIELDS",
    "BlockPlan",
    "BlockTask",
    "KernelSettings",
    "SymbolBlock",
    "block_statistics",
    "pair_statistics",
    "plan_blocks",
    "symbol_block",
]

KernelSettings = _kernel.KernelSettings
SymbolBlock = _kernel.SymbolBlock
symbol_block = _kernel.symbol_block

#: Per-pair outputs of :func:`block_statistics` and their dtypes.
FIELDS: dict[str, type] = {
    "dir2": bool,
    "hedge_ratio": np.float64,
    "intercept": np.float64,
    "adf_stat": np.float64,
    "pvalue": np.float64,
    "used_lag": np.int64,
    "nobs": np.int64,
    "adf_stat_reverse": np.float64,
    "pvalue_reverse": np.float64,
    "half_life": np.float64,
    "hurst": np.float64,
    "crossings": np.int64,
    "return_correlation": np.float64,
    "reason": np.int8,
}

#: Symbols per block by device: the products of a block pair take about
#: ``(9 + 10) * block_size**2`` floats (``max_lag`` 1), a GPU's memory holds larger ones.
DEFAULT_BLOCK_SIZE = {"cpu": 512, "cuda": 2048}

# Pairs per piece of work: bounds the per-pair temporaries (a few (pairs, F, F) arrays).
_CHUNK = {"numpy": 4096, "torch": 65536}


@dataclass(frozen=True)
class BlockTask:
    """The pairs of one block pair.

    ``positions`` index the caller's pair list; ``u`` and ``v`` are the legs' offsets
    within the first and second block (``u`` the leg with the smaller symbol position);
    ``flip`` marks pairs whose forward direction is ``v`` on ``u``.
    """

    first: int
    second: int
    positions: np.ndarray
    u: np.ndarray
    v: np.ndarray
    flip: np.ndarray

    @property
    def diagonal(self) -> bool:
        return self.first == self.second


@dataclass(frozen=True)
class BlockPlan:
    """Symbol blocks (``slices`` of the symbol positions) and the block pairs' tasks."""

    slices: tuple[slice, ...]
    tasks: tuple[BlockTask, ...]


def plan_blocks(a: np.ndarray, b: np.ndarray, n_symbols: int, block_size: int) -> BlockPlan:
    """Assign the pairs (``a[k]``, ``b[k]``) (symbol positions; forward is a on b) to
    block pairs (i, j), i <= j, each listing its pairs in the order given."""
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    a, b = np.asarray(a, dtype=np.intp), np.asarray(b, dtype=np.intp)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    first, second = lo // block_size, hi // block_size
    n_blocks = max(1, -(-n_symbols // block_size))
    key = first * n_blocks + second
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    tasks = []
    for group in np.split(order, bounds) if len(order) else []:
        i, j = int(first[group[0]]), int(second[group[0]])
        tasks.append(
            BlockTask(
                first=i,
                second=j,
                positions=group,
                u=lo[group] - i * block_size,
                v=hi[group] - j * block_size,
                flip=a[group] > b[group],
            )
        )
    slices = tuple(
        slice(k * block_size, min((k + 1) * block_size, n_symbols)) for k in range(n_blocks)
    )
    return BlockPlan(slices, tuple(tasks))


def block_statistics(
    backend: Backend,
    first: _kernel.SymbolBlock,
    second: _kernel.SymbolBlock,
    task: BlockTask,
    settings: KernelSettings,
    *,
    n_jobs: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Statistics of the pairs of ``task`` (see :func:`._kernel.pair_statistics`), as
    NumPy arrays of :data:`FIELDS`, in the task's pair order."""
    products = _kernel.block_products(backend, first, second, settings, task.diagonal)
    n_pairs = len(task.positions)
    out: dict[str, np.ndarray] = {
        name: np.empty(n_pairs, dtype=dtype) for name, dtype in FIELDS.items()
    }
    size = _CHUNK.get(backend.name, 4096)

    def run(start: int) -> None:
        part = slice(start, min(start + size, n_pairs))
        with np.errstate(all="ignore"):  # per thread: NaN and inf are results here
            stats = _kernel.pair_statistics(
                backend,
                first,
                second,
                products,
                backend.index(task.u[part]),
                backend.index(task.v[part]),
                backend.asarray(task.flip[part]) > 0,
                settings,
                task.diagonal,
            )
        for name, values in stats.items():
            out[name][part] = backend.to_numpy(values)
        if progress is not None:
            progress(2 * (part.stop - part.start))  # both directions are tested

    starts = range(0, n_pairs, size)
    if isinstance(backend, NumpyBackend) and n_jobs > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            list(pool.map(run, starts))
    else:
        for start in starts:
            run(start)
    return out


def pair_statistics(
    log_prices: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    settings: KernelSettings,
    *,
    device: str = "numpy",
    block_size: int | None = None,
    n_jobs: int = 2,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Statistics of the pairs (``a[k]`` on ``b[k]``, column positions of
    ``log_prices`` (T, N)), block pair by block pair in this process, with blocks of
    ``block_size`` symbols (by default :data:`DEFAULT_BLOCK_SIZE` for the device).

    Returns the fields of :data:`FIELDS` in the pairs' order; ``dir2`` is True where a
    row reports the symbol with the larger position as ``y``.
    """
    backend = get_backend(device)
    means = log_prices.mean(axis=0)
    size = block_size or DEFAULT_BLOCK_SIZE.get(backend.device_type, 512)
    plan = plan_blocks(a, b, log_prices.shape[1], size)
    out: dict[str, np.ndarray] = {
        name: np.empty(len(a), dtype=dtype) for name, dtype in FIELDS.items()
    }
    lock = threading.Lock()

    def report(done: int) -> None:
        if progress is not None:
            with lock:
                progress(done)

    for first, second, task in _blocks_in_order(backend, log_prices, means, plan, settings):
        stats = block_statistics(
            backend, first, second, task, settings, n_jobs=n_jobs, progress=report
        )
        for name, values in stats.items():
            out[name][task.positions] = values
    return out


def _blocks_in_order(
    backend: Backend,
    log_prices: np.ndarray,
    means: np.ndarray,
    plan: BlockPlan,
    settings: KernelSettings,
) -> Iterator[tuple[_kernel.SymbolBlock, _kernel.SymbolBlock, BlockTask]]:
    """Each task with its two blocks. Tasks come sorted by their first block, so only
    that one is kept; at most two blocks' series are held at a time."""

    def block(k: int) -> _kernel.SymbolBlock:
        columns = plan.slices[k]
        return _kernel.symbol_block(backend, log_prices[:, columns], means[columns], settings)

    held: dict[int, _kernel.SymbolBlock] = {}
    for task in plan.tasks:
        if task.first not in held:
            held.clear()  # let the old block go before building the next
            held[task.first] = block(task.first)
        first = held[task.first]
        second = first if task.diagonal else block(task.second)
        yield first, second, task
