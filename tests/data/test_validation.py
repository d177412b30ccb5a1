"""Every validation rule: the error names the rule, the symbol(s) and the date(s)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlflow_pairs.data import DataError, GapPolicy, build_panel, read_price_file
from mlflow_pairs.jobs import load_panel
from tests.conftest import pairs_cli

DATES = pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07", "2021-01-08"])


def frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns, index=DATES[: len(next(iter(columns.values())))])


def panel(raw: pd.DataFrame, **kwargs: object) -> object:
    return build_panel(raw, source="test", source_uri="", **kwargs)  # type: ignore[arg-type]


def test_missing_value_names_symbol_and_date() -> None:
    raw = frame(AAA=[1.0, 2.0, 3.0, 4.0, 5.0], BBB=[1.0, np.nan, np.nan, 2.0, 2.0])
    with pytest.raises(DataError) as info:
        panel(raw, gap_policy=GapPolicy("ffill", max_days=1))
    assert info.value.rule == "missing"
    assert "BBB" in str(info.value)
    assert "2021-01-06" in str(info.value)
    assert info.value.symbols == ("BBB",)


def test_leading_gap_cannot_be_filled() -> None:
    raw = frame(AAA=[np.nan, 2.0, 3.0], BBB=[1.0, 2.0, 3.0])
    with pytest.raises(DataError, match=r"missing price for AAA on 2021-01-04"):
        panel(raw)


def test_infinite_value_names_symbol_and_date() -> None:
    raw = frame(AAA=[1.0, 2.0, 3.0], BBB=[1.0, np.inf, 3.0])
    with pytest.raises(DataError, match=r"infinite price inf for BBB on 2021-01-05") as info:
        panel(raw)
    assert info.value.rule == "infinite"


@pytest.mark.parametrize("bad", [0.0, -3.5])
def test_non_positive_price_names_symbol_date_and_value(bad: float) -> None:
    raw = frame(AAA=[1.0, 2.0, bad], BBB=[1.0, 2.0, 3.0])
    with pytest.raises(DataError) as info:
        panel(raw)
    assert info.value.rule == "non-positive"
    assert f"non-positive price {bad:g} for AAA on 2021-01-06" in str(info.value)


def test_duplicate_dates_are_named() -> None:
    raw = pd.DataFrame(
        {"AAA": [1.0, 2.0, 3.0]}, index=pd.to_datetime(["2021-01-04", "2021-01-05", "2021-01-05"])
    )
    with pytest.raises(DataError, match=r"duplicate date 2021-01-05") as info:
        panel(raw)
    assert info.value.rule == "duplicate-dates"


def test_unsorted_dates_are_named() -> None:
    raw = pd.DataFrame(
        {"AAA": [1.0, 2.0, 3.0]}, index=pd.to_datetime(["2021-01-04", "2021-01-06", "2021-01-05"])
    )
    with pytest.raises(DataError, match=r"2021-01-05 follows 2021-01-06") as info:
        panel(raw)
    assert info.value.rule == "unsorted-dates"


def test_unknown_symbols_are_named() -> None:
    raw = frame(AAA=[1.0, 2.0], BBB=[1.0, 2.0])
    with pytest.raises(DataError, match=r"unknown symbol\(s\) ZZZ, YYY") as info:
        panel(raw, symbols=["AAA", "ZZZ", "YYY"])
    assert info.value.symbols == ("ZZZ", "YYY")


def test_unknown_symbol_of_a_universe_is_named() -> None:
    with pytest.raises(DataError, match=r"NVDA are not in universe 'sample-technology'"):
        load_panel(universe="sample-technology", symbols=["AAPL", "NVDA"])


def test_too_few_observations_names_symbols_and_need() -> None:
    raw = frame(AAA=[1.0, 2.0, 3.0], BBB=[1.0, 2.0, 3.0])
    with pytest.raises(DataError) as info:
        panel(raw, min_observations=252)
    message = str(info.value)
    assert info.value.rule == "too-few-observations"
    assert "3 observations of AAA, BBB (2021-01-04 to 2021-01-06)" in message
    assert "need 252" in message


def test_non_numeric_column_names_symbol_date_and_value() -> None:
    raw = frame(AAA=[1.0, 2.0, 3.0], BBB=["1.0", "n/a-halted", "3.0"])
    with pytest.raises(DataError) as info:
        panel(raw)
    assert info.value.rule == "non-numeric"
    assert "column BBB is not numeric: 'n/a-halted' on 2021-01-05" in str(info.value)


def test_empty_date_range_is_named() -> None:
    with pytest.raises(DataError) as info:
        load_panel(universe="sample-technology", start="2030-01-01", end="2030-06-30")
    assert info.value.rule == "empty-range"
    assert "no prices from 2030-01-01 to 2030-06-30" in str(info.value)
    assert "1990-01-02 to 2022-12-28" in str(info.value)


def test_inverted_date_range_is_named() -> None:
    with pytest.raises(DataError, match=r"start 2021-02-01 is after end 2021-01-01"):
        load_panel(universe="sample-technology", start="2021-02-01", end="2021-01-01")


def test_gap_policies() -> None:
    raw = frame(AAA=[1.0, 2.0, 3.0, 4.0, 5.0], BBB=[1.0, np.nan, np.nan, 2.0, 2.0])
    filled = panel(raw, gap_policy=GapPolicy("ffill", max_days=2))
    assert filled.prices["BBB"].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert filled.gaps_handled == 2
    dropped = panel(raw, gap_policy=GapPolicy("drop"))
    assert list(dropped.prices.index) == [DATES[0], DATES[3], DATES[4]]
    assert dropped.gaps_handled == 2


def test_content_hash_follows_the_data() -> None:
    raw = frame(AAA=[1.0, 2.0, 3.0], BBB=[1.0, 2.0, 3.0])
    first, again = panel(raw), panel(raw.copy())
    assert first.content_hash == again.content_hash
    changed = raw.copy()
    changed.iloc[1, 1] = 2.0000001
    assert panel(changed).content_hash != first.content_hash


# -- files --------------------------------------------------------------------------------


def test_unparseable_date_in_a_file_names_row_and_value(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("date,AAA\n2021-01-04,1.0\nnot-a-date,2.0\n")
    with pytest.raises(DataError, match=r"row 3 has no valid date: 'not-a-date'"):
        read_price_file(path)


def test_long_file_with_two_prices_for_one_day_names_symbol_and_date(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("date,symbol,price\n2021-01-04,AAA,1\n2021-01-04,BBB,2\n2021-01-04,AAA,3\n")
    with pytest.raises(DataError, match=r"AAA has more than one price on 2021-01-04"):
        read_price_file(path)


def test_long_file_with_unsorted_dates_names_symbol(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("date,symbol,close\n2021-01-05,AAA,1\n2021-01-04,AAA,2\n")
    with pytest.raises(DataError, match=r"dates of AAA are not in increasing order"):
        read_price_file(path)


def test_wide_and_long_csv_and_parquet_agree(tmp_path: Path) -> None:
    wide = pd.DataFrame(
        {"date": DATES, "AAA": [1.0, 2.0, 3.0, 4.0, 5.0], "BBB": [5.0, 4.0, 3.0, 2.0, 1.0]}
    )
    long = wide.melt(id_vars="date", var_name="symbol", value_name="price")
    wide.to_csv(tmp_path / "wide.csv.gz", index=False)
    long.to_csv(tmp_path / "long.csv", index=False)
    wide.to_parquet(tmp_path / "wide.parquet")
    long.to_parquet(tmp_path / "long.parquet")
    panels = [
        load_panel(prices=tmp_path / name)
        for name in ("wide.csv.gz", "long.csv", "wide.parquet", "long.parquet")
    ]
    for other in panels[1:]:
        assert other.content_hash == panels[0].content_hash
    assert [p.source for p in panels] == ["csv", "csv", "parquet", "parquet"]
    assert panels[0].source_uri == str((tmp_path / "wide.csv.gz").resolve())
    assert load_panel(prices=tmp_path / "wide.csv.gz", symbols=["BBB"]).symbols == ("BBB",)


def test_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("date,AAA,BBB\n2021-01-04,1.0,2.0\n2021-01-05,-1.0,2.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = pairs_cli("data", "check", "--prices", str(path), env=env, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "non-positive price -1 for AAA on 2021-01-05" in lines[0]


def test_cli_data_check_reports_the_panel(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    result = pairs_cli(
        "data",
        "check",
        "--universe",
        "sample-technology",
        "--start",
        "2022-01-01",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "symbols:      AAPL,AMD,MSFT" in result.stdout
    assert "observations: 249" in result.stdout
