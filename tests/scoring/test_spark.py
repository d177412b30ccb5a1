"""``score --engine spark`` on ``local[2]``: the local engine's rows, row for row.

One Spark session serves the module (starting one takes seconds); the command-line test
starts its own, as a user's command would.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlflow_pairs.jobs import plan_scoring, score_local
from mlflow_pairs.spark import SparkJobError
from mlflow_pairs.spark.score import score_spark
from tests.conftest import pairs_cli
from tests.scoring.conftest import PATTERN
from tests.scoring.test_score import assert_same_rows

pytest.importorskip("pyspark")  # the optional extra (in the dev extra)


@pytest.mark.parametrize("all_dates", [False, True], ids=["latest", "all-dates"])
def test_spark_equals_in_process_predict_row_for_row(
    spark: Any, scoring: dict, all_dates: bool
) -> None:
    """Each sector group is one task that loads its own champion from the registry."""
    plan = plan_scoring(
        scoring["folder"] / "prices.csv",
        PATTERN,
        connection=scoring["connection"],
        all_dates=all_dates,
    )
    local = score_local(plan)
    distributed = score_spark(spark, plan)
    assert len(local) == (4 * len(scoring["wide"]) if all_dates else 4)
    assert_same_rows(distributed, local)
    pd.testing.assert_series_equal(distributed.dtypes, local.dtypes)


def test_a_failing_task_is_one_line(spark: Any, scoring: dict) -> None:
    plan = plan_scoring(scoring["folder"] / "prices.csv", PATTERN, connection=scoring["connection"])
    refused = dataclasses.replace(plan, params={**plan.params, "stop_z": 0.1})
    with pytest.raises(SparkJobError) as caught:
        score_spark(spark, refused)
    message = str(caught.value)
    assert "\n" not in message
    assert "the Spark scoring job failed" in message
    assert "stop_z" in message


def test_score_engine_spark_command(scoring: dict, tmp_path: Path) -> None:
    prices = str(scoring["folder"] / "prices.parquet")
    expected = score_local(plan_scoring(prices, PATTERN, connection=scoring["connection"]))
    out = tmp_path / "scores.parquet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = pairs_cli(
        "--config", str(scoring["config"]), "score", "--model", PATTERN, "--prices", prices,
        "--engine", "spark", "--master", "local[2]", "--output", str(out),
        env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote 4 rows to {out}" in result.stdout
    assert_same_rows(pd.read_parquet(out), expected)
