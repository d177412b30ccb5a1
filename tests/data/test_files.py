"""Price files as Windows programs write them: CRLF, a byte-order mark, UTF-16, C:\\ paths."""

from __future__ import annotations

import gzip
from pathlib import Path, PureWindowsPath

import pytest
from pandas.testing import assert_frame_equal

from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import format_of, read_price_file
from tests.conftest import pairs_cli

WIDE = "date,AAPL,MSFT\n2020-01-02,75.09,160.62\n2020-01-03,74.36,158.62\n2020-01-06,74.95,159.03\n"
LONG = (
    "Date,Symbol,Close\n"
    "2020-01-02,AAPL,75.09\n2020-01-02,MSFT,160.62\n"
    "2020-01-03,AAPL,74.36\n2020-01-03,MSFT,158.62\n"
)
#: Byte-order marks as Notepad, Excel ("CSV UTF-8") and PowerShell write them.
ENCODINGS = {"utf-8": "utf-8", "utf-8-bom": "utf-8-sig", "utf-16-bom": "utf-16"}


def _write(path: Path, text: str, encoding: str, newline: str) -> Path:
    path.write_bytes(text.replace("\n", newline).encode(ENCODINGS[encoding]))
    return path


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("text", [WIDE, LONG], ids=["wide", "long"])
def test_the_same_prices_whatever_the_encoding_and_line_ends(
    tmp_path: Path, text: str, newline: str, encoding: str
) -> None:
    expected = read_price_file(_write(tmp_path / "plain.csv", text, "utf-8", "\n"))
    got = read_price_file(_write(tmp_path / "windows.csv", text, encoding, newline))
    assert list(got.columns) == ["AAPL", "MSFT"]
    assert_frame_equal(got, expected)
    assert got.loc["2020-01-03", "MSFT"] == "158.62"  # no "\r" left on the last column


def test_a_compressed_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv.gz"
    path.write_bytes(gzip.compress(WIDE.replace("\n", "\r\n").encode("utf-8-sig")))
    expected = read_price_file(_write(tmp_path / "plain.csv", WIDE, "utf-8", "\n"))
    assert_frame_equal(read_price_file(path), expected)


def test_a_file_in_a_windows_code_page_says_to_save_it_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes("date,Société Générale\n2020-01-02,1.5\n".encode("cp1252"))
    with pytest.raises(DataError) as info:
        read_price_file(path)
    message = str(info.value)
    assert message.startswith(f"cannot read price file {path}: not UTF-8 text")
    assert "save it as UTF-8" in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (PureWindowsPath("C:\\data\\prices.csv"), "csv"),
        (PureWindowsPath("C:\\data.v2\\prices"), "csv"),
        (PureWindowsPath("C:\\data\\prices.PARQUET"), "parquet"),
        (PureWindowsPath("\\\\server\\share\\prices.pq"), "parquet"),
        (PureWindowsPath("C:\\data.parquet\\prices.csv.gz"), "csv"),
    ],
)
def test_format_of_windows_paths(path: PureWindowsPath, expected: str) -> None:
    assert format_of(path) == expected


def test_a_windows_path_that_does_not_exist_is_named_as_typed(tmp_path: Path) -> None:
    result = pairs_cli("screen", "--prices", "C:\\data\\prices.csv", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: price file C:\\data\\prices.csv does not exist [rule: file]"]
    assert "Traceback" not in result.stderr
