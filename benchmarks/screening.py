"""Screening speed and memory: the engines end to end, against statsmodels' ``coint``.

Run on demand (not part of the test suite), from the repository root or anywhere:

    python benchmarks/screening.py [--sizes 500,2000] [--statsmodels-sample 200]
                                   [--skip-spark] [--skip-previous]

For each universe size N (synthetic log random walks, 2,520 days, written to a Parquet
file) it times ``mlflow-pairs screen --prices FILE --no-log`` as a user runs it, process
start included, for every engine: NumPy (``--device numpy``), PyTorch on the CPU
(``--device cpu``), Spark on ``local[2]`` (``--engine spark``) and, where there is a GPU,
PyTorch on it (``--device cuda``). Each command's peak resident memory is its largest
process's (the JVM's for Spark).

The baseline is statsmodels ``coint(maxlag=1, autolag=None)``, timed on a random sample
of pairs and extrapolated linearly to all of them (it tests one direction with no
diagnostics; the screen tests both directions and computes every diagnostic). At N =
500 the previous engine (kept in ``tests/screening/legacy``) is timed in this process
too, beside the new one, and the new one's traced peak memory is printed for each N.
Timings on a shared machine are noisy: compare ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
N_DAYS = 2520

# Runs a command; reports its wall time, its largest process's peak RSS (KiB, from the
# kernel) and the peak of its whole process tree's RSS (sampled every 20 ms with psutil:
# Spark's JVM and Python workers included).
_MEASURE = """
import json, resource, subprocess, sys, time
import psutil
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
tree_peak = 0
root = psutil.Process(child.pid)
while child.poll() is None:
    total = 0
    try:
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    tree_peak = max(tree_peak, total)
    time.sleep(0.02)
out, err = child.communicate()
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "peak_kib": peak, "tree_peak_kib": tree_peak // 1024,
                  "rc": child.returncode, "stdout": out[-2000:], "stderr": err[-2000:]}))
"""


def synthetic_prices(n_symbols: int, n_days: int = N_DAYS, seed: int = 2) -> pd.DataFrame:
    """Independent log random walks: every pair is tested, almost none passes."""
    rng = np.random.default_rng(seed)
    log_prices = 4 + np.cumsum(rng.normal(0, 0.015, (n_days, n_symbols)), axis=0)
    index = pd.bdate_range("2010-01-04", periods=n_days, name="date")
    columns = [f"S{i:04d}" for i in range(n_symbols)]
    return pd.DataFrame(np.exp(log_prices), index=index, columns=columns)


def statsmodels_seconds_per_pair(prices: pd.DataFrame, sample: int) -> tuple[float, int]:
    """statsmodels' time per pair on ``sample`` random pairs (and checks that our
    statistic is statsmodels' on them)."""
    from statsmodels.tsa.stattools import coint

    from mlflow_pairs.screening import engle_granger

    log_prices = np.log(prices.to_numpy())
    y, x = np.triu_indices(log_prices.shape[1], 1)
    chosen = np.random.default_rng(1).choice(len(y), size=min(sample, len(y)), replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        reference = [
            coint(log_prices[:, y[k]], log_prices[:, x[k]], trend="c", maxlag=1, autolag=None)[0]
            for k in chosen
        ]
        elapsed = time.perf_counter() - start
    ours = engle_granger(log_prices, y[chosen], x[chosen], max_lag=1).adf_stat
    np.testing.assert_allclose(ours, reference, rtol=1e-8, err_msg="engine and statsmodels differ")
    return elapsed / len(chosen), len(chosen)


def run_cli(prices_file: Path, *options: str) -> dict[str, object]:
    """``mlflow-pairs screen`` in a fresh process: wall seconds, peak RSS, exit status."""
    script = Path(sys.executable).with_name("mlflow-pairs")
    start = [str(script)] if script.exists() else [sys.executable, "-m", "mlflow_pairs"]
    command = [*start, "screen", "--prices", str(prices_file), "--no-log", *options]
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command],
        capture_output=True,
        text=True,
        check=True,
        cwd=prices_file.parent,
    )
    result: dict[str, object] = json.loads(measured.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(options) or 'numpy'} failed: {result['stderr']}")
    return result


def in_process(prices: pd.DataFrame, device: str, trace: bool) -> dict[str, object]:
    """One engine in this process (no start-up): the kernel (every pair's statistics)
    and the global step (FDR, selection, the sorted table) apart, with the traced peak
    memory when ``trace``."""
    from mlflow_pairs.screening import ScreeningCriteria
    from mlflow_pairs.screening.blocks import pair_statistics
    from mlflow_pairs.screening.engine import finish_screen, prepare_screen

    criteria = ScreeningCriteria(device=device)
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    prepared = prepare_screen(prices, criteria)
    stats = pair_statistics(
        prepared.log_prices,  # type: ignore[union-attr]
        prepared.a,  # type: ignore[union-attr]
        prepared.b,  # type: ignore[union-attr]
        prepared.settings,  # type: ignore[union-attr]
        device=device,
    )
    kernel = time.perf_counter() - start
    result = finish_screen(prepared, stats, criteria, None)  # type: ignore[arg-type]
    total = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
    if trace:
        tracemalloc.stop()
    return {"kernel": kernel, "total": total, "peak": peak, "result": result}


def previous_engine(prices: pd.DataFrame) -> float:
    """The engine this one replaced (kept for the tests), in this process."""
    sys.path.insert(0, str(ROOT))
    from tests.screening.legacy.engine import ScreeningCriteria, screen

    start = time.perf_counter()
    screen(prices, ScreeningCriteria())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500,2000", help="universe sizes, comma-separated")
    parser.add_argument(
        "--statsmodels-sample", type=int, default=200, help="pairs timed with statsmodels"
    )
    parser.add_argument("--skip-spark", action="store_true", help="no Spark runs")
    parser.add_argument(
        "--skip-previous", action="store_true", help="do not time the previous engine"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    from mlflow_pairs.screening import gpu_available

    gpu = gpu_available()
    engines: list[tuple[str, tuple[str, ...]]] = [
        ("numpy", ("--device", "numpy")),
        ("torch-cpu", ("--device", "cpu")),
    ]
    if not args.skip_spark:
        try:
            import pyspark  # noqa: F401

            engines.append(("spark local[2]", ("--engine", "spark", "--master", "local[2]")))
        except ImportError:
            print("(pyspark is not installed: no Spark runs; pip install 'mlflow-pairs[spark]')")
    if gpu:
        engines.append(("torch-cuda", ("--device", "cuda")))

    print(
        f"machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"load average {os.getloadavg()[0]:.1f}; numpy {np.__version__}; "
        f"GPU: {'yes' if gpu else 'none'}"
    )
    per_pair, sampled = statsmodels_seconds_per_pair(synthetic_prices(500), args.statsmodels_sample)
    print(
        f"statsmodels coint(maxlag=1, autolag=None): {per_pair * 1e3:.2f} ms per pair "
        f"(timed on {sampled} random pairs of N = 500; extrapolated linearly below)"
    )

    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            prices = synthetic_prices(n)
            path = Path(folder) / f"prices_{n}.parquet"
            prices.to_parquet(path)
            n_pairs = n * (n - 1) // 2
            baseline = per_pair * n_pairs
            print(
                f"\nN = {n:,} symbols x {N_DAYS:,} days, {n_pairs:,} pairs; statsmodels "
                f"(estimated): {baseline:,.0f} s"
            )
            print(
                f"  {'engine':<16}{'wall s':>9}{'vs statsmodels':>16}"
                f"{'peak RSS MiB (largest process / all)':>40}"
            )
            for name, options in engines:
                measured = run_cli(path, *options)
                wall = float(measured["wall"])  # type: ignore[arg-type]
                peak = float(measured["peak_kib"]) / 1024  # type: ignore[arg-type]
                tree = float(measured["tree_peak_kib"]) / 1024  # type: ignore[arg-type]
                print(
                    f"  {name:<16}{wall:>9.2f}{baseline / wall:>15,.0f}x"
                    f"{f'{peak:,.0f} / {tree:,.0f}':>40}"
                )
            for device in ["numpy"] + (["cuda"] if gpu else []):
                if device == "cuda":
                    in_process(prices.iloc[:, :50], device, False)  # CUDA start-up
                measured = in_process(prices, device, False)
                total, kernel = float(measured["total"]), float(measured["kernel"])  # type: ignore[arg-type]
                print(
                    f"  in this process, {device}: {total:.2f} s (kernel {kernel:.2f} s, "
                    f"table {total - kernel:.2f} s); {measured['result'].summary()}"  # type: ignore[attr-defined]
                )
            traced = float(in_process(prices, "numpy", True)["peak"])  # type: ignore[arg-type]
            print(f"  peak traced allocations of that run (table included): {traced:,.0f} MiB")
            if n == 500 and not args.skip_previous:
                new = float(in_process(prices, "numpy", False)["total"])  # type: ignore[arg-type]
                before = previous_engine(prices)
                print(
                    f"  previous engine in this process: {before:.2f} s; the new one "
                    f"{new:.2f} s ({before / new:.1f}x faster)"
                )
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
