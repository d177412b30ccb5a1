"""``screen`` writes the project's tables with the same run id and numbers as what the run
logged to MLflow, on SQLite and PostgreSQL; ``report pairs`` answers from them. (``train``'s
rows are checked in test_train.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlflow_pairs.db import create_database
from tests._tables import read_table
from tests.conftest import pairs_cli, write_config
from tests.model.simulate import mean_reverting_pairs


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}


@pytest.fixture(params=["sqlite", "postgresql"])
def tracking(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A tracking store that is a database: the embedded SQLite kind, and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    uri = f"postgresql://postgres@127.0.0.1:5432/{request.getfixturevalue('database_name')}"
    create_database(uri)
    return uri


def _config(home: Path, tracking: str, **extra: object) -> Path:
    store = {"tracking_uri": tracking, "artifact_root": (home / "artifacts").as_uri()}
    return write_config(home / "config.yaml", {"mlflow": store, **extra})


def _artifact(client: MlflowClient, run_id: str, path: str, home: Path) -> pd.DataFrame:
    return pd.read_csv(client.download_artifacts(run_id, path, str(home / "downloads")))


def _tagged(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``frame`` with every column but ``keys`` renamed ``logged_*`` (merges stay plain)."""
    return frame.rename(columns=lambda c: c if c in keys else f"logged_{c}")


def _same_screening(merged: pd.DataFrame) -> None:
    """Stored screening rows against the logged table's (``logged_*``) columns."""
    for ours, theirs in [
        ("statistic", "adf_stat"),
        ("p_value", "pair_pvalue"),
        ("q_value", "qvalue"),
        ("half_life", "half_life"),
        ("hurst", "hurst"),
        ("crossings", "crossings"),
        ("hedge_ratio", "hedge_ratio"),
    ]:
        _same(merged[ours], merged[f"logged_{theirs}"])
    assert merged["selected"].tolist() == merged["logged_selected"].astype(bool).tolist()


def _same(stored: pd.Series, logged: pd.Series) -> None:
    np.testing.assert_allclose(
        stored.astype(float).to_numpy(), logged.astype(float).to_numpy(), rtol=0, atol=0
    )


@pytest.mark.postgres
def test_screen_rows_carry_the_run_id_and_the_logged_numbers(tracking: str, tmp_path: Path) -> None:
    prices = mean_reverting_pairs(3, n_days=800, n_pairs=3)
    prices.rename_axis("date").reset_index().to_csv(tmp_path / "prices.csv", index=False)
    config = _config(tmp_path, tracking)
    result = pairs_cli(
        "--config", str(config), "screen", "--prices", "prices.csv", env=_env(), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.split("Logged run ")[1].split()[0]
    assert "Wrote rows (15 to pairs_screening_results, 15 to pairs_variance_stability)" in (
        result.stdout
    )

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    run = client.get_run(run_id)
    logged = _artifact(client, run_id, "screening/screening.csv", tmp_path)
    stored = read_table(tracking, "screening_results")
    assert set(stored["run_id"]) == {run_id}
    assert len(stored) == len(logged) == run.data.metrics["pairs_tested"] == 15
    merged = stored.merge(_tagged(logged, ["y", "x"]), on=["y", "x"], validate="one_to_one")
    assert len(merged) == 15
    _same_screening(merged)
    assert int(merged["selected"].sum()) == run.data.metrics["pairs_selected"] > 0
    assert {str(d) for d in stored["window_start"]} == {run.data.params["screening.start"]}
    assert {str(d) for d in stored["window_end"]} == {run.data.params["screening.end"]}

    stability = read_table(tracking, "variance_stability").merge(
        _tagged(logged, ["y", "x"]), on=["y", "x"], validate="one_to_one"
    )
    assert len(stability) == 15
    assert set(stability["run_id"]) == {run_id}
    _same(stability["arch_lm_pvalue"], stability["logged_arch_lm_pvalue"])
    _same(stability["ljung_box_pvalue"], stability["logged_ljung_box_pvalue"])
    assert set(stability["arch_lags"]) == {int(run.data.params["screening.arch_lags"])}

    report = pairs_cli(
        "--config", str(config), "report", "pairs", "--format", "csv", env=_env(), cwd=tmp_path
    )
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(pd.io.common.StringIO(report.stdout))
    chosen = logged[logged["selected"]]
    expected = {"/".join(sorted((y, x))) for y, x in zip(chosen["y"], chosen["x"], strict=True)}
    assert set(table["pair"]) == expected
    assert (table["times_selected"] == 1).all()
    assert (table["runs"] == 1).all()
    none = pairs_cli(
        "--config", str(config), "report", "pairs", "--since", "2999-01-01", env=_env(),
        cwd=tmp_path,
    )  # fmt: skip
    assert "No pair has been selected by screening since 2999-01-01" in none.stdout


def test_tables_behind_head_are_reported_not_touched(tmp_path: Path) -> None:
    """A store whose tables are at an older revision: `screen` keeps its MLflow run and
    warns once, `doctor` fails naming the revisions, `db upgrade --uri` mends it."""
    from mlflow_pairs.db import downgrade_pairs_schema, upgrade_pairs_schema

    tracking = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()  # a store's folder is never created by a mistake
    upgrade_pairs_schema(tracking)
    downgrade_pairs_schema(tracking, "pairs_0001")
    config = _config(tmp_path, tracking)
    prices = mean_reverting_pairs(4, n_days=600, n_pairs=2)
    prices.rename_axis("date").reset_index().to_csv(tmp_path / "prices.csv", index=False)

    screened = pairs_cli(
        "--config", str(config), "screen", "--prices", "prices.csv", env=_env(), cwd=tmp_path
    )
    assert screened.returncode == 0, screened.stderr
    assert "Logged run" in screened.stdout
    assert "Warning: rows not written to the mlflow-pairs tables" in screened.stderr
    assert "at revision pairs_0001, this version needs pairs_0002" in screened.stderr
    assert "mlflow-pairs db upgrade" in screened.stderr
    assert len(read_table(tracking, "screening_results")) == 0

    doctor = pairs_cli("--config", str(config), "doctor", env=_env(), cwd=tmp_path)
    assert doctor.returncode == 1
    line = next(x for x in doctor.stdout.splitlines() if " tables " in x)
    assert line.startswith("[FAIL] tables")
    assert "at pairs_0001, expected pairs_0002 (run `mlflow-pairs db upgrade`)" in line

    mended = pairs_cli(
        "--config", str(config), "db", "upgrade", "--only", "pairs", "--uri", tracking,
        env=_env(), cwd=tmp_path,
    )  # fmt: skip
    assert mended.returncode == 0, mended.stderr
    doctor = pairs_cli("--config", str(config), "doctor", env=_env(), cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout
    assert "tables    mlflow-pairs tables at head pairs_0002" in doctor.stdout
