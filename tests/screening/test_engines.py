"""The blocked engine against the engine it replaced, and NumPy against PyTorch.

The reference is the previous engine, kept verbatim in ``tests/screening/legacy``: every
column of every row must agree (floats to 1e-9 relative), so the rewrite changed how the
numbers are computed and nothing else. The statistics themselves are checked against
statsmodels in ``test_engle_granger.py`` and ``test_diagnostics.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.screening import (
    DeviceUnavailableError,
    ScreeningCriteria,
    candidate_pairs,
    gpu_available,
    resolve_device,
    screen,
)
from mlflow_pairs.screening._backend import NumpyBackend, TorchBackend
from mlflow_pairs.screening.blocks import plan_blocks
from tests.screening.legacy import engine as legacy


def assert_same_table(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """Same rows, columns and dtypes; equal strings, integers and flags; floats to 1e-9."""
    pd.testing.assert_frame_equal(expected, actual, check_exact=False, rtol=1e-9, atol=1e-12)


def _legacy_criteria(criteria: ScreeningCriteria) -> legacy.ScreeningCriteria:
    fields = {k: v for k, v in vars(criteria).items() if k != "device"}
    return legacy.ScreeningCriteria(**fields)


@pytest.mark.parametrize(
    ("criteria", "block_size"),
    [
        (ScreeningCriteria(device="numpy"), 512),
        (ScreeningCriteria(device="numpy", fdr=None, top_k=None), 64),
        (ScreeningCriteria(device="numpy", max_lag=3, autolag="aic"), 97),
    ],
    ids=["defaults-one-block", "raw-pvalues-blocks-of-64", "autolag-blocks-of-97"],
)
def test_numpy_engine_reproduces_the_previous_engine(
    universe: tuple[pd.DataFrame, dict[str, str]], criteria: ScreeningCriteria, block_size: int
) -> None:
    prices, _ = universe
    expected = legacy.screen(prices, _legacy_criteria(criteria))
    actual = screen(prices, criteria, block_size=block_size)
    assert_same_table(expected.table, actual.table)
    assert actual.messages == expected.messages
    assert actual.summary() == expected.summary()
    assert actual.n_passed > 0  # the planted pairs pass: the selection is exercised
    assert actual.table["arch_lm_pvalue"].notna().sum() == actual.n_passed  # > 5,000 pairs


def test_sectors_and_small_screens_reproduce_the_previous_engine(
    universe: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    prices, sectors = universe
    criteria = ScreeningCriteria(device="numpy", max_lag=2, autolag="bic")
    expected = legacy.screen(prices, _legacy_criteria(criteria), sectors=sectors)
    assert_same_table(
        expected.table, screen(prices, criteria, sectors=sectors, block_size=50).table
    )

    small = prices.iloc[:, :40]  # 780 pairs: the variance checks run on every pair
    criteria = ScreeningCriteria(device="numpy", top_k=3)
    expected = legacy.screen(small, _legacy_criteria(criteria))
    actual = screen(small, criteria, block_size=16)
    assert_same_table(expected.table, actual.table)
    assert actual.table["arch_lm_pvalue"].notna().sum() > actual.n_passed


def test_tls_reports_the_forward_direction_of_its_tie(
    universe: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    """With TLS both directions are the same line, so their statistics tie: the previous
    engine let rounding pick the direction; this one reports the forward one. Every
    number that does not depend on the direction agrees with the previous engine."""
    prices, _ = universe
    criteria = ScreeningCriteria(device="numpy", max_lag=2, autolag="aic", hedge="tls")
    expected = legacy.screen(prices, _legacy_criteria(criteria)).table
    actual = screen(prices, criteria, block_size=97).table
    order = {s: i for i, s in enumerate(prices.columns)}
    tested = actual[actual["reason"] == ""]
    assert (tested["y"].map(order) < tested["x"].map(order)).all()

    def by_pair(table: pd.DataFrame) -> pd.DataFrame:
        first = np.where(table["y"].map(order) < table["x"].map(order), table["y"], table["x"])
        second = np.where(first == table["y"], table["x"], table["y"])
        return table.assign(first=first, second=second).set_index(["first", "second"])

    old, new = by_pair(expected), by_pair(actual).reindex(by_pair(expected).index)
    free = [c for c in old.columns if c not in ("y", "x", "hedge_ratio", "intercept")]
    free.remove("rejected_by")
    assert_same_table(old[free], new[free])
    pd.testing.assert_series_equal(
        old["rejected_by"].str.replace(r":.*$", "", regex=True),
        new["rejected_by"].str.replace(r":.*$", "", regex=True),
    )
    swapped = (old["y"] != new["y"]).to_numpy() & old["reason"].eq("").to_numpy()
    assert swapped.any()
    # The reciprocal, up to the TLS formula's own cancellation when sxy is near 0.
    np.testing.assert_allclose(old["hedge_ratio"][swapped], 1 / new["hedge_ratio"][swapped], 1e-6)


def test_duplicated_series_give_the_same_rows_on_every_engine(
    universe: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    """A symbol listed twice (or at twice the price) makes perfectly collinear pairs:
    undefined, rejected, and with no crossings (their spread is rounding noise, which
    the previous engine counted). Its other pairs duplicate the original's, with
    p-values equal up to rounding, so rows may trade places: compare them by pair."""
    prices = universe[0].iloc[:, :30].copy()
    prices["TWIN"] = prices.iloc[:, 25]
    prices["DOUBLE"] = 2 * prices.iloc[:, 26]

    def by_pair(table: pd.DataFrame) -> pd.DataFrame:
        return table.set_index(["y", "x"]).sort_index()

    numpy_rows = by_pair(screen(prices, ScreeningCriteria(device="numpy")).table)
    for device, size in (("cpu", None), ("numpy", 7)):
        rows = by_pair(screen(prices, ScreeningCriteria(device=device), block_size=size).table)
        assert_same_table(numpy_rows, rows)
    collinear = numpy_rows["reason"] == "legs are (almost) perfectly collinear"
    assert collinear.sum() == 2
    assert (numpy_rows.loc[collinear, "crossings"] == 0).all()
    previous = by_pair(legacy.screen(prices, legacy.ScreeningCriteria()).table)
    assert_same_table(previous[~collinear], numpy_rows[~collinear])


def test_explicit_pairs_in_any_order(universe: tuple[pd.DataFrame, dict[str, str]]) -> None:
    prices, _ = universe
    symbols = list(prices.columns)
    pairs = candidate_pairs(symbols[:60])[::7]
    pairs = [(b, a) if k % 2 else (a, b) for k, (a, b) in enumerate(pairs)]  # both orders
    pairs += [("FLAT", symbols[0]), (symbols[200], symbols[3])]
    criteria = ScreeningCriteria(device="numpy")
    expected = legacy.screen(prices, _legacy_criteria(criteria), pairs=pairs)
    assert_same_table(expected.table, screen(prices, criteria, pairs=pairs, block_size=32).table)
    flat = expected.table[expected.table["y"].eq("FLAT") | expected.table["x"].eq("FLAT")]
    assert flat["reason"].eq("constant price series").all()


@pytest.mark.parametrize(
    "criteria",
    [ScreeningCriteria(), ScreeningCriteria(max_lag=3, autolag="aic", hedge="tls")],
    ids=["defaults", "autolag-tls"],
)
def test_torch_on_cpu_equals_numpy(
    universe: tuple[pd.DataFrame, dict[str, str]], criteria: ScreeningCriteria
) -> None:
    prices, sectors = universe
    numpy_result = screen(prices, _with_device(criteria, "numpy"), sectors=sectors)
    torch_result = screen(prices, _with_device(criteria, "cpu"), sectors=sectors, block_size=128)
    assert_same_table(numpy_result.table, torch_result.table)


def _with_device(criteria: ScreeningCriteria, device: str) -> ScreeningCriteria:
    return ScreeningCriteria(**{**vars(criteria), "device": device})


def test_sign_changes_agree_across_backends_and_with_a_loop() -> None:
    rng = np.random.default_rng(3)
    rows = np.cumsum(rng.normal(0, 0.01, (30, 300)), axis=1)
    rows -= rows.mean(axis=1, keepdims=True)
    rows[7] = 0.0  # a flat path: never a crossing
    y = rng.integers(0, 30, 400)
    x = rng.integers(0, 30, 400)
    y[:20], x[:20] = 4, np.arange(5, 25)  # a run of consecutive rows, read in place
    gamma = rng.uniform(-2, 2, 400)
    gamma[::9] = 0.0

    def loop(k: int) -> int:
        side = rows[y[k]] > gamma[k] * rows[x[k]]
        return sum(int(side[t] != side[t - 1]) for t in range(1, rows.shape[1]))

    expected = np.array([loop(k) for k in range(400)])
    np.testing.assert_array_equal(NumpyBackend().sign_changes(rows, y, x, gamma), expected)
    torch_backend = TorchBackend("cpu")
    arrays = (
        torch_backend.asarray(rows),
        torch_backend.index(y),
        torch_backend.index(x),
        torch_backend.asarray(gamma),
    )
    # The tensor code a GPU runs, here on the CPU; and the CPU's shortcut through NumPy.
    in_torch = torch_backend.sign_changes_in_torch(*arrays)
    np.testing.assert_array_equal(torch_backend.to_numpy(in_torch), expected)
    np.testing.assert_array_equal(
        torch_backend.to_numpy(torch_backend.sign_changes(*arrays)), expected
    )
    assert expected[(y == 7) & (gamma == 0)].sum() == 0


def test_block_plan_covers_every_pair_once() -> None:
    a = np.array([0, 5, 9, 3, 9, 2])
    b = np.array([1, 2, 4, 9, 8, 7])
    plan = plan_blocks(a, b, n_symbols=10, block_size=4)
    seen = np.concatenate([task.positions for task in plan.tasks])
    assert sorted(seen) == list(range(len(a)))
    for task in plan.tasks:
        assert task.first <= task.second
        lo = task.u + plan.slices[task.first].start
        hi = task.v + plan.slices[task.second].start
        np.testing.assert_array_equal(lo, np.minimum(a, b)[task.positions])
        np.testing.assert_array_equal(hi, np.maximum(a, b)[task.positions])
        np.testing.assert_array_equal(task.flip, (a > b)[task.positions])


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_and_auto_falls_back_to_numpy() -> None:
    with pytest.raises(DeviceUnavailableError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto") == "numpy"
    with pytest.raises(DeviceUnavailableError, match="unknown screening device"):
        resolve_device("tpu")


@pytest.mark.skipif(not gpu_available(), reason="needs a CUDA GPU")
def test_cuda_equals_numpy(universe: tuple[pd.DataFrame, dict[str, str]]) -> None:
    prices, sectors = universe
    expected = screen(prices, ScreeningCriteria(device="numpy"), sectors=sectors)
    actual = screen(prices, ScreeningCriteria(device="cuda"), sectors=sectors, block_size=128)
    assert_same_table(expected.table, actual.table)
