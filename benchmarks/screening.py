"""Screening speed: our vectorised Engle–Granger engine against statsmodels' ``coint``.

Run on demand (not part of the test suite):

    python benchmarks/screening.py [--statsmodels-sample 300] [--skip-large]

1. N = 100 synthetic symbols x 2,520 days (4,950 pairs): our engine (one direction per
   pair, like ``coint``) and the full ``screen`` (both directions and all diagnostics)
   against statsmodels ``coint(maxlag=1, autolag=None)``. statsmodels is timed on a
   random sample of the pairs and extrapolated linearly to all 4,950; the output says so.
2. N = 500 (124,750 pairs x 2,520 days): the full ``screen`` with wall time and peak
   memory (traced NumPy/Python allocations, and the process's peak resident set).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd


def synthetic_prices(n_symbols: int, n_days: int = 2520, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    log_prices = 4 + np.cumsum(rng.normal(0, 0.015, (n_days, n_symbols)), axis=0)
    index = pd.bdate_range("2010-01-04", periods=n_days)
    return pd.DataFrame(
        np.exp(log_prices), index=index, columns=[f"S{i:03d}" for i in range(n_symbols)]
    )


def best_of(repeats: int, func) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--statsmodels-sample",
        type=int,
        default=300,
        help="pairs timed with statsmodels (extrapolated to all)",
    )
    parser.add_argument("--skip-large", action="store_true", help="skip the N = 500 screen")
    args = parser.parse_args()

    from statsmodels.tsa.stattools import coint

    from mlflow_pairs.screening import ScreeningCriteria, engle_granger, screen

    print(f"machine: {os.cpu_count()} CPUs; numpy {np.__version__}")
    prices = synthetic_prices(100)
    log_prices = np.log(prices.to_numpy())
    y, x = np.triu_indices(100, 1)
    n_pairs = len(y)

    engine = best_of(3, lambda: engle_granger(log_prices, y, x, max_lag=1))
    full = best_of(3, lambda: screen(prices, ScreeningCriteria(max_lag=1)))

    rng = np.random.default_rng(1)
    sample = rng.choice(n_pairs, size=min(args.statsmodels_sample, n_pairs), replace=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        reference = [
            coint(log_prices[:, y[k]], log_prices[:, x[k]], trend="c", maxlag=1, autolag=None)[0]
            for k in sample
        ]
        sampled = time.perf_counter() - start
    ours = engle_granger(log_prices, y[sample], x[sample], max_lag=1).adf_stat
    assert np.allclose(ours, reference, rtol=1e-8), "engine and statsmodels disagree"
    statsmodels_all = sampled / len(sample) * n_pairs

    print(f"\nN = 100 symbols x 2,520 days, {n_pairs:,} pairs")
    print(
        f"  baseline statsmodels coint(maxlag=1, autolag=None): {statsmodels_all:8.2f} s "
        f"(timed on {len(sample)} random pairs, {sampled:.2f} s, extrapolated linearly)"
    )
    print(
        f"  mlflow-pairs engle_granger (same pairs, one direction): {engine:8.3f} s  "
        f"-> {statsmodels_all / engine:,.0f}x faster than statsmodels"
    )
    print(
        f"  mlflow-pairs screen (both directions + diagnostics):    {full:8.3f} s  "
        f"-> {statsmodels_all / full:,.0f}x faster than statsmodels (one direction only)"
    )

    if args.skip_large:
        return
    large = synthetic_prices(500, seed=2)
    tracemalloc.start()
    start = time.perf_counter()
    result = screen(large, ScreeningCriteria(max_lag=1))
    wall = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nN = 500 symbols x 2,520 days, {result.n_tested:,} pairs (both directions tested)")
    print(f"  full screen wall time: {wall:.2f} s (target < 30 s)")
    print(
        f"  peak traced allocations during the screen: {traced_peak / 2**20:,.0f} MiB; "
        f"process peak RSS: {peak_rss:,.0f} MiB"
    )
    print(f"  {result.summary()}")


if __name__ == "__main__":
    main()
