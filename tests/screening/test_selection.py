"""Filters, ranking, top-k, scope, and a plain answer when nothing passes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.screening import COLUMNS, ScreeningCriteria, candidate_pairs, screen


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    n = 800
    index = pd.bdate_range("2012-01-02", periods=n)
    base = np.cumsum(rng.normal(0, 0.01, (n, 3)), axis=0)
    columns = {}
    for i, theta in enumerate([0.2, 0.1, 0.05]):  # three cointegrated pairs, fast to slow
        ou = np.zeros(n)
        for t in range(1, n):
            ou[t] = (1 - theta) * ou[t - 1] + rng.normal(0, 0.004)
        columns[f"X{i}"] = np.exp(3 + base[:, i])
        columns[f"Y{i}"] = np.exp(3.2 + 1.2 * base[:, i] + ou)
    columns["W"] = np.exp(3 + np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame(columns, index=index)


def test_table_has_the_contract_columns_and_one_row_per_pair(prices: pd.DataFrame) -> None:
    result = screen(prices)
    assert tuple(result.table.columns) == COLUMNS
    assert result.n_tested == 7 * 6 // 2
    assert set(zip(result.table["y"], result.table["x"], strict=True)).isdisjoint(
        set(zip(result.table["x"], result.table["y"], strict=True))
    )


def test_filters_and_ranking(prices: pd.DataFrame) -> None:
    result = screen(prices, ScreeningCriteria(max_half_life=10, top_k=None))
    chosen = {frozenset(p) for p in zip(result.selected["y"], result.selected["x"], strict=True)}
    assert chosen == {frozenset({"X0", "Y0"}), frozenset({"X1", "Y1"})}
    slow = result.table[
        (result.table["y"].isin(["X2", "Y2"])) & (result.table["x"].isin(["X2", "Y2"]))
    ]
    assert slow["rejected_by"].iloc[0].startswith("half_life:")
    assert list(result.selected["rank"]) == [1, 2]
    assert result.selected["pair_pvalue"].is_monotonic_increasing


def test_top_k_keeps_the_best(prices: pd.DataFrame) -> None:
    result = screen(prices, ScreeningCriteria(top_k=1))
    assert len(result.selected) == 1
    assert result.n_passed >= 2
    assert (
        result.selected["pair_pvalue"].iloc[0]
        == result.table.loc[result.table["rejected_by"] == "", "pair_pvalue"].min()
    )
    assert "kept the best 1" in result.messages[0]


def test_fdr_selects_by_qvalue(prices: pd.DataFrame) -> None:
    result = screen(prices, ScreeningCriteria(fdr=0.05, top_k=None, max_half_life=1e9))
    assert (result.selected["qvalue"] <= 0.05).all()
    rejected = result.table[~result.table["selected"]]
    assert all(
        r.startswith(("fdr:", "hedge_ratio:", "half_life", "crossings", "hurst", "correlation"))
        for r in rejected["rejected_by"]
    )


def test_nothing_passing_is_said_plainly(prices: pd.DataFrame) -> None:
    result = screen(prices[["W", "X0"]])
    assert result.empty
    assert result.selected.empty
    assert result.summary().startswith("no pair passed the filters among 1 tested")
    assert "smallest p-value" in result.summary()


def test_scope_within_sector_by_default() -> None:
    sectors = {"A": "energy", "B": "energy", "C": "technology", "D": "technology"}
    assert candidate_pairs(list(sectors), sectors) == [("A", "B"), ("C", "D")]
    assert len(candidate_pairs(list(sectors), sectors, cross_sector=True)) == 6
