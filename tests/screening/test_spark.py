"""``screen --engine spark`` on ``local[2]``: the same table as the local engines.

One Spark session serves the module (starting one takes seconds); the command-line test
starts its own, as a user's command would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.screening import ScreeningCriteria, gpu_available, screen
from mlflow_pairs.spark import SparkJobError
from mlflow_pairs.spark.screen import auto_block_size, screen_spark
from tests.conftest import pairs_cli
from tests.screening.test_engines import assert_same_table

pytest.importorskip("pyspark")  # the optional extra (in the dev extra)


def test_numpy_torch_and_spark_give_the_same_table(
    spark: Any, universe: tuple[pd.DataFrame, dict[str, str]]
) -> None:
    """The acceptance test: 300 symbols, every column to 1e-9, the same selection."""
    prices, _ = universe
    numpy_result = screen(prices, ScreeningCriteria(device="numpy"))
    torch_result = screen(prices, ScreeningCriteria(device="cpu"), block_size=128)
    spark_result = screen_spark(spark, prices, ScreeningCriteria(device="numpy"))
    assert prices.shape[1] >= 300
    assert_same_table(numpy_result.table, torch_result.table)
    assert_same_table(numpy_result.table, spark_result.table)
    selected = numpy_result.selected[["y", "x"]].to_numpy().tolist()
    assert selected  # the planted pairs pass
    assert spark_result.selected[["y", "x"]].to_numpy().tolist() == selected
    assert torch_result.selected[["y", "x"]].to_numpy().tolist() == selected


def test_fdr_is_applied_over_all_blocks(
    spark: Any, universe: tuple[pd.DataFrame, dict[str, str]]
) -> None:
    """Small blocks (many tasks), sectors and lag selection: q-values come from every
    p-value together, not block by block."""
    prices, sectors = universe
    criteria = ScreeningCriteria(device="numpy", max_lag=2, autolag="bic", top_k=None)
    local = screen(prices, criteria, sectors=sectors)
    distributed = screen_spark(spark, prices, criteria, sectors=sectors, block_size=40)
    assert_same_table(local.table, distributed.table)
    assert len(local.table) > 10_000
    assert local.n_passed > 0


def test_a_failing_task_is_one_line(
    spark: Any, universe: tuple[pd.DataFrame, dict[str, str]]
) -> None:
    if gpu_available():
        pytest.skip("this machine has a GPU")
    prices, _ = universe
    with pytest.raises(SparkJobError) as caught:
        screen_spark(spark, prices.iloc[:, :20], ScreeningCriteria(device="cuda"))
    message = str(caught.value)
    assert "\n" not in message
    assert "no CUDA GPU" in message


def test_automatic_blocks_make_a_few_tasks_per_core() -> None:
    assert auto_block_size(300, 2) == 100  # 3 blocks: 6 block pairs for 2 cores
    assert auto_block_size(50, 2) == 32  # never tiny blocks
    assert auto_block_size(100_000, 8) == 1024  # nor huge ones


def test_cli_spark_writes_parquet_and_the_tables_like_the_local_engine(
    clean_env: Path, universe: tuple[pd.DataFrame, dict[str, str]]
) -> None:
    from tests._tables import read_table

    prices, _ = universe
    prices = prices.iloc[:, :60]
    prices.rename_axis("date").reset_index().to_parquet(clean_env / "prices.parquet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    common = ("screen", "--prices", "prices.parquet", "--top-k", "3")
    local = pairs_cli(*common, "--output", "local.parquet", "--no-log", env=env, cwd=clean_env)
    assert local.returncode == 0, local.stderr
    result = pairs_cli(
        *common,
        "--engine",
        "spark",
        "--master",
        "local[2]",
        "--output",
        "spark.parquet",
        env=env,
        cwd=clean_env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    expected = pd.read_parquet(clean_env / "local.parquet")
    actual = pd.read_parquet(clean_env / "spark.parquet")
    assert_same_table(expected, actual)
    assert expected["selected"].sum() == 3

    run_id = result.stdout.split("Logged run ")[1].split()[0]
    rows = read_table(
        f"sqlite:///{clean_env / 'mlruns' / 'mlflow.db'}",
        "screening_results",
        where={"run_id": run_id},
    )
    assert len(rows) == len(actual)
    stored = rows.set_index(["y", "x"]).sort_index()
    written = actual.set_index(["y", "x"]).sort_index()
    np.testing.assert_allclose(stored["p_value"].astype(float), written["pair_pvalue"], rtol=1e-12)
    assert stored["selected"].astype(bool).tolist() == written["selected"].tolist()
