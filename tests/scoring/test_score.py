"""``mlflow-pairs score`` and its job on the local engine: each group's rows are the
registered pyfunc's own ``predict`` rows.

The oracle is ``mlflow.pyfunc.load_model(...).predict(...)`` on the file's rows as a
client would send them (text dates, long form): on the request the documentation
defines (``min_history`` dates before the first date after the model's data) the rows
are equal to 1e-12; on the whole file, to the documented invariance of the latest row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlflow_pairs.cli import cli
from mlflow_pairs.jobs import plan_scoring, score_local
from tests.conftest import pairs_cli
from tests.scoring.conftest import ENERGY, PATTERN

TECHNOLOGY = "pairs_trading_gru_garch_technology"


def pyfunc_predict(scoring: dict, name: str, rows: pd.DataFrame, **params: Any) -> pd.DataFrame:
    """The registered champion's own predict on ``rows`` (long: date, symbol, price)."""
    mlflow.set_tracking_uri(scoring["uri"])
    mlflow.set_registry_uri(scoring["uri"])
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    return model.predict(rows[["date", "symbol", "price"]], params=params or None)


def sector_rows(scoring: dict, sector: str) -> pd.DataFrame:
    """The sector's rows of the price file as a client reads them (text dates)."""
    raw = pd.read_csv(scoring["folder"] / "prices.csv", dtype={"date": str})
    return raw[raw["sector"] == sector].reset_index(drop=True)


def documented_start(scoring: dict, sector: str) -> str:
    """``min_history`` dates before the first date after the model's data."""
    model = scoring["models"][sector]
    dates = sorted(set(sector_rows(scoring, sector)["date"]))
    first_new = next(
        i for i, d in enumerate(dates) if pd.Timestamp(d) > pd.Timestamp(model.data_end_)
    )
    return dates[first_new - model.min_history]


def assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True),
        expected.reset_index(drop=True),
        check_exact=False,
        rtol=1e-12,
        atol=1e-12,
    )
    assert got["signal"].tolist() == expected["signal"].tolist()


def _names(scoring: dict, sector: str) -> list[str]:
    return [f"{y}/{x}" for y, x in scoring["models"][sector].pairs]


def test_each_sector_is_scored_by_its_champion(scoring: dict) -> None:
    plan = plan_scoring(scoring["folder"] / "prices.csv", PATTERN, connection=scoring["connection"])
    assert [g.sector for g in plan.groups] == ["energy", "technology"]
    assert [g.model_uri for g in plan.groups] == [f"models:/{ENERGY}/1", f"models:/{TECHNOLOGY}/1"]
    table = score_local(plan)
    assert set(table["date"]) == {pd.Timestamp("2017-03-31")}
    name = {"energy": ENERGY, "technology": TECHNOLOGY}
    for group in plan.groups:
        sector = group.sector
        assert sector is not None
        rows = table[table["pair"].isin(_names(scoring, sector))]
        assert len(rows) == 2
        # Each group gets the history its model needs: the documented minimum.
        start = documented_start(scoring, sector)
        assert group.prices.index[0] == pd.Timestamp(start)
        assert list(group.prices.columns) == list(scoring["models"][sector].symbols)
        raw = sector_rows(scoring, sector)
        assert_same_rows(rows, pyfunc_predict(scoring, name[sector], raw[raw["date"] >= start]))
        # The whole file gives the same latest row (the GRU's float32 batches differ).
        whole = pyfunc_predict(scoring, name[sector], raw)
        pd.testing.assert_frame_equal(
            rows.reset_index(drop=True), whole, check_exact=False, rtol=1e-6, atol=1e-7
        )
        assert rows["signal"].tolist() == whole["signal"].tolist()


def test_all_dates_from_parquet_equal_predict_on_the_whole_file(scoring: dict) -> None:
    plan = plan_scoring(
        scoring["folder"] / "prices.parquet",
        PATTERN,
        connection=scoring["connection"],
        all_dates=True,
    )
    table = score_local(plan)
    for sector, name in (("energy", ENERGY), ("technology", TECHNOLOGY)):
        rows = table[table["pair"].isin(_names(scoring, sector))]
        expected = pyfunc_predict(scoring, name, sector_rows(scoring, sector), all_dates=True)
        assert_same_rows(rows, expected)
        assert rows["date"].nunique() == len(scoring["wide"])


def test_one_model_scores_a_wide_file(scoring: dict, tmp_path: Path) -> None:
    """No {sector}: one group, the model picks its symbols among the file's."""
    wide = scoring["wide"].reset_index()
    wide["date"] = wide["date"].dt.strftime("%Y-%m-%d")
    wide.to_csv(tmp_path / "wide.csv", index=False)
    run = scoring["info"].run_id
    for model in (f"{TECHNOLOGY}@champion", f"models:/{TECHNOLOGY}/1", f"runs:/{run}/model"):
        plan = plan_scoring(tmp_path / "wide.csv", model, connection=scoring["connection"])
        assert [g.sector for g in plan.groups] == [None]
        start = documented_start(scoring, "technology")
        raw = sector_rows(scoring, "technology")
        expected = pyfunc_predict(scoring, TECHNOLOGY, raw[raw["date"] >= start])
        assert_same_rows(score_local(plan), expected)


def _invoke(scoring: dict, *args: str) -> Any:
    """The command in this process (the in-process ``cli`` group, no ``.env``)."""
    environ = {k: None for k in os.environ if k.startswith("MLFLOW_")}
    return CliRunner().invoke(
        cli, ["--config", str(scoring["config"]), *args], env=environ, catch_exceptions=False
    )


def test_score_command_writes_parquet_csv_and_standard_output(
    scoring: dict, tmp_path: Path
) -> None:
    prices = str(scoring["folder"] / "prices.parquet")
    expected = score_local(plan_scoring(prices, PATTERN, connection=scoring["connection"]))
    # The installed console script, end to end.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    out = tmp_path / "scores.parquet"
    result = pairs_cli(
        "--config", str(scoring["config"]), "score", "--model", PATTERN, "--prices", prices,
        "--output", str(out), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"wrote 4 rows to {out}" in result.stdout
    assert_same_rows(pd.read_parquet(out), expected)
    # CSV, to a file and to standard output: the same numbers (floats written exactly).
    csv = tmp_path / "scores.csv"
    written = _invoke(
        scoring, "score", "--model", PATTERN, "--prices", prices, "--output", str(csv)
    )
    assert written.exit_code == 0, written.stderr
    shown = _invoke(scoring, "score", "--model", PATTERN, "--prices", prices)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == csv.read_text()
    read = pd.read_csv(csv, parse_dates=["date"]).astype({"date": "datetime64[ns]"})
    for column in ("pair", "y", "x"):
        read[column] = np.asarray(read[column], dtype=object)
    assert_same_rows(read[list(expected.columns)], expected)


BAD = [
    ("unknown-alias", ("--model", "pairs_trading_gru_garch_{sector}@nope"),
     "sector energy: model 'pairs_trading_gru_garch_energy' has no alias 'nope' "
     "(aliases: champion -> v1"),
    ("unknown-model", ("--model", "nope@champion"), "no registered model 'nope'"),
    ("unknown-version", ("--model", f"models:/{TECHNOLOGY}/9"), "has no version 9"),
    ("prices-missing", ("--prices", "nope.csv"), "price file nope.csv does not exist"),
    ("output-extension", ("--output", "scores.txt"), "give a file ending in .csv or .parquet"),
    ("symbol-missing", ("--prices", "no-amd.csv"),
     "sector technology: no prices of AMD (models:/pairs_trading_gru_garch_technology/1 needs"),
    ("sector-without-model", ("--prices", "financials.csv"),
     "sector financials: no registered model 'pairs_trading_gru_garch_financials'"),
    ("no-sector-column", ("--prices", "wide.csv"), "needs a long table with 'symbol' and "
     "'sector' columns"),
    ("too-little-history", ("--prices", "short.csv"), "the model needs at least"),
    ("master-not-spark", ("--master", "local[2]"), "--master is for --engine spark"),
    ("master-garbage", ("--engine", "spark", "--master", "nowhere"),
     "not a Spark master URL: 'nowhere'"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_and_exit_2(
    scoring: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    long = scoring["long"]
    long[long["symbol"] != "AMD"].to_csv("no-amd.csv", index=False)
    extra = long[long["symbol"] == "XOM"].assign(symbol="JPM", sector="financials")
    pd.concat([long, extra]).to_csv("financials.csv", index=False)
    scoring["wide"].to_csv("wide.csv")
    short = long[long["date"] >= "2017-02-15"]
    short.to_csv("short.csv", index=False)
    options = dict(zip(args[::2], args[1::2], strict=True))
    given = {"--model": PATTERN, "--prices": str(scoring["folder"] / "prices.csv"), **options}
    flat = [part for item in given.items() for part in item]
    result = _invoke(scoring, "score", *flat)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert len(errors) == 1, result.stderr
    assert message in errors[0], errors[0]
    assert "Traceback" not in result.stderr


def test_without_pyspark_the_spark_engine_says_how_to_install_it(tmp_path: Path) -> None:
    # sys.modules[name] = None is how Python spells "this module is not installed".
    code = (
        "import sys; sys.modules['pyspark'] = None; "
        "sys.argv = ['mlflow-pairs', *sys.argv[1:]]; "
        "from mlflow_pairs.cli import main; main()"
    )
    args = ("score", "--model", f"{TECHNOLOGY}@champion", "--prices", "p.csv", "--engine", "spark")
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert result.returncode == 2, result.stderr
    assert errors == ["Error: Spark support is not installed; install it with: "
                      "pip install 'mlflow-pairs[spark]'"], result.stderr  # fmt: skip
