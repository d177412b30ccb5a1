"""``mlflow-pairs screen``: the CSV contract, MLflow logging, --no-log, errors."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.config import load_settings
from mlflow_pairs.tracking import MlflowConnection
from tests.conftest import pairs_cli

CONTRACT = [
    "y",
    "x",
    "hedge_ratio",
    "intercept",
    "adf_stat",
    "pvalue",
    "pair_pvalue",
    "qvalue",
    "half_life",
    "hurst",
    "crossings",
    "selected",
]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def test_screen_universe_writes_csv_and_logs_the_run(clean_env: Path) -> None:
    (clean_env / "out").mkdir()  # --output creates no folder (a mistyped path is an error)
    result = pairs_cli(
        "screen",
        "--universe",
        "sample-health_care",
        "--start",
        "2005-01-01",
        "--end",
        "2009-12-31",
        "--output",
        "out/screen.csv",
        env=_env(),
        cwd=clean_env,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(clean_env / "out" / "screen.csv")
    assert set(CONTRACT) <= set(table.columns)
    assert len(table) == 10
    run_id = result.stdout.split("Logged run ")[1].split()[0]

    connection = MlflowConnection(load_settings(environ={}))
    run = connection.client.get_run(run_id)
    metrics = run.data.metrics
    assert metrics["pairs_tested"] == 10
    assert metrics["pairs_passed"] == (table["rejected_by"].isna()).sum()
    # The smallest pair p-value: each pair's is its weaker direction's.
    assert metrics["min_pvalue"] == pytest.approx(table["pair_pvalue"].min())
    assert run.data.params["screening.max_lag"] == "1"
    assert run.data.tags["mlflow_pairs.sector"] == "health_care"
    artifacts = {a.path for a in connection.client.list_artifacts(run_id, "screening")}
    assert artifacts == {"screening/screening.csv", "screening/screening.json"}
    logged = pd.read_csv(
        connection.client.download_artifacts(run_id, "screening/screening.csv", str(clean_env))
    )
    assert np.allclose(logged["adf_stat"], table["adf_stat"])
    assert run.inputs.dataset_inputs[0].dataset.name == "sample-health_care"


def test_screen_prices_file_with_options_and_no_log(clean_env: Path) -> None:
    rng = np.random.default_rng(0)
    index = pd.bdate_range("2015-01-01", periods=600)
    x = np.cumsum(rng.normal(0, 0.01, 600))
    ou = np.zeros(600)
    for t in range(1, 600):
        ou[t] = 0.85 * ou[t - 1] + rng.normal(0, 0.004)
    frame = pd.DataFrame(
        {
            "date": index,
            "AAA": np.exp(3 + x),
            "BBB": np.exp(2 + 0.9 * x + ou),
            "CCC": np.exp(3 + np.cumsum(rng.normal(0, 0.01, 600))),
        }
    )
    frame.to_csv(clean_env / "prices.csv", index=False)
    result = pairs_cli(
        "screen",
        "--prices",
        "prices.csv",
        "--symbols",
        "AAA,BBB",
        "--start",
        "2015-01-01",
        "--end",
        "2017-06-30",
        "--max-lag",
        "2",
        "--autolag",
        "aic",
        "--fdr",
        "0.1",
        "--output",
        "s.csv",
        "--no-log",
        env=_env(),
        cwd=clean_env,
    )
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(clean_env / "s.csv")
    assert len(table) == 1
    assert bool(table["selected"].iloc[0])
    assert "1 of 1 pairs passed" in result.stdout
    assert not (clean_env / "mlruns").exists()  # --no-log touches no store


def test_screen_bad_input_is_one_line(clean_env: Path) -> None:
    result = pairs_cli(
        "screen",
        "--universe",
        "sample-technology",
        "--start",
        "2022-12-20",
        "--end",
        "2022-12-28",
        "--max-lag",
        "3",
        "--no-log",
        env=_env(),
        cwd=clean_env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "need 10" in lines[0]
    assert "AAPL, AMD, MSFT" in lines[0]


def test_screen_fails_early_when_the_store_is_unreachable(clean_env: Path) -> None:
    env = {**_env(), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    result = pairs_cli(
        "screen",
        "--universe",
        "sample-energy",
        "--start",
        "2020-01-01",
        "--end",
        "2021-12-31",
        env=env,
        cwd=clean_env,
        timeout=60,
    )
    assert result.returncode == 2  # the user's setting to fix: exit 2, like a bad option
    assert "cannot use MLflow tracking store http://127.0.0.1:9" in result.stderr
    assert mlflow.get_tracking_uri() != "http://127.0.0.1:9"
