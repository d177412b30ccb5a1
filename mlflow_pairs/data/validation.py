"""Validation rules for price tables; each failure names the symbols, dates and rule.

The rules, in the order the pipeline applies them: ``dates`` (a date index, parseable),
``duplicate-dates``, ``unsorted-dates``, ``non-numeric``, ``unknown-symbols``,
``empty-range``, ``infinite``, ``non-positive``, ``missing`` (after the gap policy) and
``too-few-observations``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mlflow_pairs.data.errors import DataError, format_dates

__all__ = [
    "check_date_index",
    "check_enough_observations",
    "check_no_missing",
    "check_numeric",
    "check_positive_finite",
    "check_range",
    "check_symbols",
]


def check_date_index(frame: pd.DataFrame, origin: str) -> None:
    """A DatetimeIndex without duplicates, in increasing order."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(
            "dates", f"{origin}: prices must be indexed by date, not {type(index).__name__}"
        )
    if index.hasnans:
        raise DataError("dates", f"{origin}: a row has no date")
    duplicated = index[index.duplicated()].unique()
    if len(duplicated):
        raise DataError(
            "duplicate-dates",
            f"{origin}: duplicate date {format_dates(duplicated)}",
            dates=list(duplicated),
        )
    if not index.is_monotonic_increasing:
        position = int(np.argmax(index[1:] < index[:-1])) + 1
        before, after = index[position - 1], index[position]
        raise DataError(
            "unsorted-dates",
            f"{origin}: dates are not in increasing order: {after:%Y-%m-%d} follows "
            f"{before:%Y-%m-%d}",
            dates=[before, after],
        )


def check_numeric(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Every column numeric; returns the frame as float64.

    A column with text in it names the symbol, the first offending date and value.
    """
    if all(pd.api.types.is_float_dtype(dtype) for dtype in frame.dtypes):
        return frame.astype("float64", copy=False)  # the common case, without a column loop
    out = {}
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            raise DataError(
                "non-numeric", f"{origin}: column {column} holds booleans", symbols=[str(column)]
            )
        if pd.api.types.is_numeric_dtype(series):
            out[column] = series.astype("float64")
            continue
        converted = pd.to_numeric(series, errors="coerce")
        bad = series.notna() & converted.isna()
        if bad.any():
            date = series.index[bad.to_numpy().argmax()]
            raise DataError(
                "non-numeric",
                f"{origin}: column {column} is not numeric: {series[date]!r} on "
                f"{pd.Timestamp(date):%Y-%m-%d}",
                symbols=[str(column)],
                dates=[pd.Timestamp(date)],
            )
        out[column] = converted.astype("float64")
    return pd.DataFrame(out, index=frame.index)


def check_symbols(
    frame: pd.DataFrame, requested: Sequence[str] | None, origin: str
) -> pd.DataFrame:
    """Keep the ``requested`` columns, in that order; unknown symbols are an error."""
    if requested is None:
        return frame
    duplicates = sorted({s for s in requested if list(requested).count(s) > 1})
    if duplicates:
        raise DataError(
            "unknown-symbols",
            f"{origin}: symbol(s) requested twice: {', '.join(duplicates)}",
            symbols=duplicates,
        )
    unknown = [s for s in requested if s not in frame.columns]
    if unknown:
        available = ", ".join(map(str, frame.columns[:30]))
        raise DataError(
            "unknown-symbols",
            f"{origin}: unknown symbol(s) {', '.join(unknown)} (available: {available})",
            symbols=unknown,
        )
    return frame[list(requested)]


def check_range(
    frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None, origin: str
) -> pd.DataFrame:
    """Rows from ``start`` to ``end`` inclusive; an empty or inverted range is an error."""
    if start is not None and end is not None and start > end:
        raise DataError(
            "empty-range", f"start {start:%Y-%m-%d} is after end {end:%Y-%m-%d}", dates=[start, end]
        )
    selected = frame.loc[start:end] if len(frame) else frame
    if selected.empty:
        covers = (
            f"it covers {frame.index[0]:%Y-%m-%d} to {frame.index[-1]:%Y-%m-%d}"
            if len(frame)
            else "it is empty"
        )
        wanted = f"{_day(start)} to {_day(end)}"
        raise DataError(
            "empty-range",
            f"{origin}: no prices from {wanted}; {covers}",
            dates=[d for d in (start, end) if d is not None],
        )
    return selected


def _day(value: pd.Timestamp | None) -> str:
    return "the beginning" if value is None else f"{value:%Y-%m-%d}"


#: The plausible range of a price (any currency).
PRICE_RANGE = (1e-6, 1e9)


def check_positive_finite(frame: pd.DataFrame, origin: str) -> None:
    """No infinite, no zero or negative and no implausible prices (missing values are
    checked later). Plausible is ``1e-6 <= price <= 1e9``: beyond that the value is a
    unit or parsing error, and log prices would lose their precision."""
    values = frame.to_numpy()
    finite = np.isfinite(values)
    low, high = PRICE_RANGE
    implausible = finite & ((values > high) | ((values > 0) & (values < low)))
    for rule, mask, what in (
        ("infinite", np.isinf(values), "infinite price"),
        ("non-positive", finite & (values <= 0), "non-positive price"),
        ("implausible", implausible, f"price outside [{low:g}, {high:g}]"),
    ):  # fmt: skip
        if mask.any():
            rows, cols = np.nonzero(mask)
            symbols = sorted({str(frame.columns[c]) for c in cols})
            first_symbol = str(frame.columns[cols[0]])
            dates = frame.index[rows[cols == cols[0]]]
            value = values[rows[0], cols[0]]
            raise DataError(
                rule,
                f"{origin}: {what} {value:g} for {first_symbol} on {format_dates(dates)}"
                + (
                    f" (also in {', '.join(s for s in symbols if s != first_symbol)})"
                    if len(symbols) > 1
                    else ""
                ),
                symbols=symbols,
                dates=list(dates),
            )


def check_no_missing(frame: pd.DataFrame, origin: str, policy: str) -> None:
    """No missing value left after the gap policy."""
    missing = frame.isna()
    if missing.to_numpy().any():
        counts = missing.sum()
        symbols = [str(s) for s in counts[counts > 0].index]
        first = symbols[0]
        dates = frame.index[missing[first].to_numpy()]
        raise DataError(
            "missing",
            f"{origin}: missing price for {first} on {format_dates(dates)} after gap policy "
            f"{policy}"
            + (f" (also missing: {', '.join(symbols[1:])})" if len(symbols) > 1 else ""),
            symbols=symbols,
            dates=list(dates),
        )


def check_enough_observations(frame: pd.DataFrame, needed: int, origin: str) -> None:
    """At least ``needed`` rows, as the requested windows require."""
    if len(frame) < needed:
        span = f"{frame.index[0]:%Y-%m-%d} to {frame.index[-1]:%Y-%m-%d}" if len(frame) else "-"
        raise DataError(
            "too-few-observations",
            f"{origin}: {len(frame)} observations of {', '.join(map(str, frame.columns))} "
            f"({span}), but the requested windows need {needed}",
            symbols=[str(c) for c in frame.columns],
            dates=[frame.index[0], frame.index[-1]] if len(frame) else [],
        )
