"""Reading users' price files: CSV (optionally compressed) or Parquet, wide or long.

* wide: a date column, then one column of prices per symbol;
* long: the columns ``date``, ``symbol`` and a price column (``price``, ``close``,
  ``adj_close`` or ``adjusted_close``), one row per date and symbol.

Column names are matched case-insensitively. The result is a wide table indexed by date in
file order; the pipeline's validation then reports duplicates, unsorted dates and bad
values by symbol and date. CSV files may be UTF-8 or, with a byte-order mark, UTF-16 (as
Excel and PowerShell save them on Windows), with LF or CRLF line endings.
"""

from __future__ import annotations

from pathlib import Path, PurePath

import pandas as pd

from mlflow_pairs._text import encoding_of
from mlflow_pairs.data.errors import DataError, format_dates

__all__ = ["PRICE_COLUMNS", "format_of", "read_price_file", "table_to_wide"]

PRICE_COLUMNS = ("price", "close", "adj_close", "adjusted_close", "adj close")
_DATE_COLUMNS = ("date", "datetime", "timestamp", "time")
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


def read_price_file(path: str | PurePath, file_format: str | None = None) -> pd.DataFrame:
    """Read ``path`` into a wide DataFrame (DatetimeIndex, one column per symbol).

    ``file_format`` is ``csv`` or ``parquet``; by default it follows the file's suffix.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file", f"price file {path} does not exist")
    fmt = file_format or format_of(path)
    try:
        if fmt == "parquet":
            table = pd.read_parquet(path)
            if isinstance(table.index, pd.DatetimeIndex):
                table = table.reset_index()
        else:
            encoding = _csv_encoding(path)
            # pandas renames a repeated column (AAPL, AAPL.1): read the header as written.
            header = (
                pd.read_csv(path, nrows=1, header=None, dtype=str, encoding=encoding)
                .iloc[0]
                .tolist()
            )
            repeated = sorted({str(c) for c in header if header.count(c) > 1})
            if repeated:
                raise DataError(
                    "duplicate-symbols",
                    f"price file {path}: column(s) {', '.join(repeated)} appear more than once",
                    symbols=repeated,
                )
            table = pd.read_csv(path, dtype=str, keep_default_na=True, encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataError(
            "file",
            f"cannot read price file {path}: not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); save it as UTF-8",
        ) from None
    except (OSError, ValueError, ImportError) as exc:
        raise DataError("file", f"cannot read price file {path}: {exc}") from None
    return table_to_wide(table, f"price file {path}")


def table_to_wide(table: pd.DataFrame, origin: str) -> pd.DataFrame:
    """A wide or long price table (date as a column) as a wide frame indexed by date."""
    if table.empty and not len(table.columns):
        raise DataError("empty-range", f"{origin} is empty")
    lowered = {str(c).strip().lower(): c for c in table.columns}
    date_column = next((lowered[n] for n in _DATE_COLUMNS if n in lowered), table.columns[0])
    dates = _parse_dates(table[date_column], origin, str(date_column))
    if "symbol" in lowered or "ticker" in lowered:
        return _from_long(table, dates, lowered, origin)
    wide = table.drop(columns=[date_column])
    wide.index = pd.DatetimeIndex(dates, name="date")
    wide.columns = [str(c).strip() for c in wide.columns]
    return wide


def format_of(path: str | PurePath) -> str:
    """``parquet`` for ``.parquet``/``.pq`` files, else ``csv`` (a Windows path given as a
    :class:`~pathlib.PureWindowsPath` is read by Windows rules on any platform)."""
    pure = path if isinstance(path, PurePath) else PurePath(path)
    suffixes = [s.lower() for s in pure.suffixes]
    return "parquet" if ".parquet" in suffixes or ".pq" in suffixes else "csv"


def _csv_encoding(path: Path) -> str:
    """By the byte-order mark of an uncompressed file; compressed ones are UTF-8 (a mark
    is dropped)."""
    if any(s.lower() in _COMPRESSED for s in path.suffixes):
        return "utf-8-sig"
    with path.open("rb") as handle:
        return encoding_of(handle.read(4))


def _parse_dates(values: pd.Series, origin: str, column: str) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            "dates",
            f"{origin}: column {column} row {row + 2} has no valid date: {values.iloc[row]!r}",
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return pd.DatetimeIndex(parsed)


def _from_long(
    table: pd.DataFrame, dates: pd.DatetimeIndex, lowered: dict[str, object], origin: str
) -> pd.DataFrame:
    symbol_column = lowered.get("symbol", lowered.get("ticker"))
    price_column = next((lowered[n] for n in PRICE_COLUMNS if n in lowered), None)
    if price_column is None:
        raise DataError(
            "non-numeric",
            f"{origin}: a long table needs a price column named one of {', '.join(PRICE_COLUMNS)}",
        )
    long = pd.DataFrame(
        {
            "date": dates,
            "symbol": table[symbol_column].astype(str).str.strip(),
            "price": table[price_column].to_numpy(),
        }
    )
    duplicated = long.duplicated(subset=["date", "symbol"], keep="first")
    if duplicated.any():
        first = long[duplicated].iloc[0]
        same = long[duplicated & (long["symbol"] == first["symbol"])]["date"]
        raise DataError(
            "duplicate-dates",
            f"{origin}: {first['symbol']} has more than one price on {format_dates(same)}",
            symbols=[first["symbol"]],
            dates=list(same),
        )
    # Rows of a long table may be grouped by symbol; within each symbol, dates must increase.
    for symbol, rows in long.groupby("symbol", sort=False):
        symbol_dates = pd.DatetimeIndex(rows["date"])
        if not symbol_dates.is_monotonic_increasing:
            at = int((symbol_dates[1:] < symbol_dates[:-1]).argmax()) + 1
            raise DataError(
                "unsorted-dates",
                f"{origin}: dates of {symbol} are not in increasing order: "
                f"{symbol_dates[at]:%Y-%m-%d} follows {symbol_dates[at - 1]:%Y-%m-%d}",
                symbols=[str(symbol)],
                dates=[symbol_dates[at - 1], symbol_dates[at]],
            )
    wide = long.pivot(index="date", columns="symbol", values="price").sort_index()
    wide.columns.name = None
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    return wide
