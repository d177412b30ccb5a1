"""``mlflow-pairs screen``'s engine options: devices, Parquet output, one-line refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlflow_pairs.screening import ScreeningCriteria, gpu_available, screen
from tests.conftest import pairs_cli
from tests.screening.test_engines import assert_same_table

SAMPLE = ("--universe", "sample-technology", "--start", "2015-01-01", "--end", "2019-12-31")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


def _one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert text in lines[0]


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line(clean_env: Path) -> None:
    result = pairs_cli("screen", *SAMPLE, "--no-log", "--device", "cuda", env=_env(), cwd=clean_env)
    _one_line_error(result, "no CUDA GPU is available")


def _run_code(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c code args...`` in ``cwd`` (``sys.argv[1:]`` are ``args``)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120, check=False,
    )  # fmt: skip


def test_without_pyspark_the_spark_engine_says_how_to_install_it(clean_env: Path) -> None:
    # sys.modules[name] = None is how Python spells "this module is not installed".
    code = (
        "import sys; sys.modules['pyspark'] = None; "
        "sys.argv = ['mlflow-pairs', *sys.argv[1:]]; "
        "from mlflow_pairs.cli import main; main()"
    )
    result = _run_code(code, clean_env, "screen", *SAMPLE, "--no-log", "--engine", "spark")
    _one_line_error(result, "pip install 'mlflow-pairs[spark]'")


def test_a_bad_master_is_one_line(clean_env: Path) -> None:
    pytest.importorskip("pyspark")
    args = ("screen", *SAMPLE, "--no-log", "--engine", "spark", "--master", "locl[2]")
    _one_line_error(pairs_cli(*args, env=_env(), cwd=clean_env), "not a Spark master URL")


def test_parquet_output_equals_the_library_table(
    clean_env: Path, universe: tuple[pd.DataFrame, dict[str, str]]
) -> None:
    prices, _ = universe
    prices = prices.iloc[:, :40]
    prices.rename_axis("date").reset_index().to_parquet(clean_env / "prices.parquet")
    result = pairs_cli(
        "screen",
        "--prices",
        "prices.parquet",
        "--device",
        "cpu",
        "--output",
        "table.parquet",
        "--no-log",
        env=_env(),
        cwd=clean_env,
    )
    assert result.returncode == 0, result.stderr
    written = pd.read_parquet(clean_env / "table.parquet")
    expected = screen(prices, ScreeningCriteria(device="numpy")).table
    assert_same_table(expected, written)


def test_screen_starts_without_the_heavy_libraries(clean_env: Path) -> None:
    """``screen --no-log`` on the NumPy engine needs neither PyTorch nor MLflow nor a
    database driver: the command line imports what a command uses (process start)."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted({m.split('.')[0] for m in sys.modules}),"
        " file=sys.stderr))\n"
        "sys.argv = ['mlflow-pairs', *sys.argv[1:]]\n"
        "from mlflow_pairs.cli import main\n"
        "main()\n"
    )
    result = _run_code(code, clean_env, "screen", *SAMPLE, "--no-log", "--device", "numpy")
    assert result.returncode == 0, result.stderr
    loaded = result.stderr.strip().splitlines()[-1]
    for heavy in ("torch", "mlflow", "sqlalchemy", "arch", "matplotlib"):
        assert f"'{heavy}'" not in loaded, f"{heavy} imported by screen: {loaded}"
