"""Rows of the project's own tables: written by ``screen`` and ``train``, read by
``report pairs``.

Every write is one transaction that first deletes what the same run (or model version)
wrote before, so writing again is harmless and concurrent runs never touch each other's
rows. Not-a-number values are stored as NULL; infinities as such.

Where ``uri`` is an MLflow tracking server (``http(s)://``) rather than a database, the
rows go through the server's mlflow-pairs endpoints (:mod:`mlflow_pairs.db.remote`) with
the client's MLflow credentials: the server writes them to its own database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import Any, cast

import pandas as pd
import sqlalchemy as sa

from mlflow_pairs.db._engine import absolute_sqlite_uri, using_engine
from mlflow_pairs.db.pairs_schema import ensure_pairs_schema
from mlflow_pairs.db.tables import (
    model_performance,
    schema_for,
    screening_results,
    variance_stability,
)

__all__ = [
    "REPORT_COLUMNS",
    "RecordCounts",
    "RowError",
    "coerce_rows",
    "json_value",
    "pair_report",
    "parse_since",
    "performance_rows",
    "record_performance",
    "record_screening",
    "report_from_records",
    "report_records",
    "screening_rows",
    "stability_rows",
    "write_performance",
    "write_screening",
]

RecordCounts = dict[str, int]

#: Columns of :func:`pair_report`, in order.
REPORT_COLUMNS = (
    "sector", "pair", "times_selected", "times_tested", "runs", "best_pvalue",
    "last_selected", "model_versions", "f1", "auc", "sharpe", "max_drawdown", "trades",
)  # fmt: skip


_RELATIVE = re.compile(r"^(?P<n>\d+)d$")


class RowError(ValueError):
    """Rows or a query that cannot be used as they are (the message names the row and
    column, or the parameter)."""


def parse_since(value: str | None) -> datetime | None:
    """``2026-01-31`` (UTC unless an offset is given), a full ISO time, or ``30d`` (the last
    30 days) as an aware datetime; ``None`` stays ``None``. Raises :class:`RowError`."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        try:
            return datetime.now(timezone.utc) - timedelta(days=int(match.group("n")))
        except OverflowError:
            raise RowError(
                f"{value!r} reaches back before year 1; give fewer days or a date"
            ) from None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RowError(
            f"{value!r} is neither a date (2026-01-31) nor a number of days (30d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _is_remote(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def _value(value: Any) -> Any:
    """A plain Python value for the driver; NaN and missing become None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None  # infinities stay (a half-life is infinite without mean reversion)
    return value


def _int(value: Any) -> int | None:
    value = _value(value)
    return None if value is None else int(value)


def _day(value: Any) -> date:
    return cast(date, pd.Timestamp(value).date())


def _window_keys(row: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """What identifies a screening row: run, sector, legs and window."""
    return {
        "run_id": run_id,
        "sector": _value(row.get("sector")) or None,
        "y": str(row["y"]),
        "x": str(row["x"]),
        "window_start": _day(row["window_start"]),
        "window_end": _day(row["window_end"]),
    }


def screening_rows(table: pd.DataFrame, run_id: str) -> list[dict[str, Any]]:
    """One row per tested pair of a screening table with ``window_start``/``window_end``."""
    return [
        {
            **_window_keys(row, run_id),
            "hedge_ratio": _value(row["hedge_ratio"]),
            "statistic": _value(row["adf_stat"]),
            "p_value": _value(row["pair_pvalue"]),
            "q_value": _value(row["qvalue"]),
            "half_life": _value(row["half_life"]),
            "hurst": _value(row["hurst"]),
            "crossings": _int(row["crossings"]),
            "selected": bool(row["selected"]),
            "rank": _int(row["rank"]),
            "rejected_by": _value(row["rejected_by"]) or None,
        }
        for row in table.to_dict("records")
    ]


def stability_rows(
    table: pd.DataFrame, run_id: str, *, arch_lags: int, ljung_box_lags: int
) -> list[dict[str, Any]]:
    """ARCH-LM and Ljung-Box p-values per pair and window of a screening table."""
    return [
        {
            **_window_keys(row, run_id),
            "arch_lm_pvalue": _value(row["arch_lm_pvalue"]),
            "arch_lags": arch_lags,
            "ljung_box_pvalue": _value(row["ljung_box_pvalue"]),
            "ljung_box_lags": ljung_box_lags,
        }
        for row in table.to_dict("records")
    ]


def performance_rows(
    table: pd.DataFrame, *, model_name: str, model_version: int, run_id: str, sector: str | None
) -> list[dict[str, Any]]:
    """Pair-level rows (``pair`` as ``Y/X``, ``period_start``/``period_end``, metrics)."""
    rows = []
    for row in table.to_dict("records"):
        y, x = str(row["pair"]).split("/", 1)
        rows.append(
            {
                "model_name": model_name,
                "model_version": int(model_version),
                "run_id": run_id,
                "sector": sector,
                "pair": str(row["pair"]),
                "y": y,
                "x": x,
                "period_start": _day(row["period_start"]),
                "period_end": _day(row["period_end"]),
                "f1": _value(row.get("f1")),
                "accuracy": _value(row.get("accuracy")),
                "auc": _value(row.get("auc")),
                "sharpe": _value(row.get("sharpe")),
                "max_drawdown": _value(row.get("max_drawdown")),
                "trades": _int(row.get("trades")),
            }
        )
    return rows


def _write(
    uri: str,
    writes: Iterable[tuple[Callable[[str | None], sa.Table], Any, list[dict[str, Any]]]],
    *,
    timeout: float,
) -> RecordCounts:
    """Ensure the schema, then replace and insert each table's rows in one transaction."""
    uri = absolute_sqlite_uri(uri)
    ensure_pairs_schema(uri, timeout=timeout)
    now = datetime.now(timezone.utc)
    counts: RecordCounts = {}
    what = "cannot write mlflow-pairs tables in"
    with using_engine(uri, what, timeout=timeout) as engine, engine.begin() as connection:
        schema = schema_for(connection.dialect.name)
        for table_of, where, rows in writes:
            table = table_of(schema)
            connection.execute(table.delete().where(where(table)))
            if rows:
                connection.execute(table.insert(), [{**r, "created_at": now} for r in rows])
            counts[table.name] = len(rows)
    return counts


def write_screening(
    uri: str,
    run_id: str,
    screening: list[dict[str, Any]],
    stability: list[dict[str, Any]],
    *,
    timeout: float = 30.0,
) -> RecordCounts:
    """Replace a run's rows of the screening and variance-stability tables (rows as
    :func:`screening_rows` and :func:`stability_rows` make them) in one transaction."""

    def same_run(t: sa.Table) -> Any:
        return t.c.run_id == run_id

    return _write(
        uri,
        [(screening_results, same_run, screening), (variance_stability, same_run, stability)],
        timeout=timeout,
    )


def write_performance(
    uri: str,
    rows: list[dict[str, Any]],
    *,
    model_name: str,
    model_version: int,
    timeout: float = 30.0,
) -> RecordCounts:
    """Replace a model version's rows of the performance table (rows as
    :func:`performance_rows` makes them)."""

    def same_version(t: sa.Table) -> Any:
        return (t.c.model_name == model_name) & (t.c.model_version == int(model_version))

    return _write(uri, [(model_performance, same_version, rows)], timeout=timeout)


def record_screening(
    uri: str,
    run_id: str,
    table: pd.DataFrame,
    *,
    arch_lags: int,
    ljung_box_lags: int,
    timeout: float = 30.0,
) -> RecordCounts:
    """Write a run's screening table (with ``window_start``/``window_end`` columns) to the
    screening and variance-stability tables; returns the rows written per table.

    ``uri`` is the tables' database, or a tracking server that serves them."""
    screening = screening_rows(table, run_id)
    stability = stability_rows(table, run_id, arch_lags=arch_lags, ljung_box_lags=ljung_box_lags)
    if _is_remote(uri):
        from mlflow_pairs.db.remote import post_screening

        return post_screening(uri, run_id, screening, stability)
    return write_screening(uri, run_id, screening, stability, timeout=timeout)


def record_performance(
    uri: str,
    table: pd.DataFrame,
    *,
    model_name: str,
    model_version: int,
    run_id: str,
    sector: str | None,
    timeout: float = 30.0,
) -> RecordCounts:
    """Write the pair-level performance behind a registered model version (to the
    database, or through the tracking server that ``uri`` names)."""
    rows = performance_rows(
        table, model_name=model_name, model_version=model_version, run_id=run_id, sector=sector
    )
    if _is_remote(uri):
        from mlflow_pairs.db.remote import post_performance

        return post_performance(uri, rows, model_name=model_name, model_version=model_version)
    return write_performance(
        uri, rows, model_name=model_name, model_version=model_version, timeout=timeout
    )


#: Tables whose rows :func:`coerce_rows` accepts, by the names the endpoints use.
_TABLES: dict[str, Callable[[str | None], sa.Table]] = {
    "screening_results": screening_results,
    "model_performance": model_performance,
    "variance_stability": variance_stability,
}
#: Columns the database fills in.
_SERVER_COLUMNS = frozenset({"id", "created_at"})


def _coerce(column: sa.Column[Any], value: Any) -> Any:
    """One JSON value as ``column`` stores it; raises ValueError saying what is wrong."""
    kind = column.type
    if value is None:
        if not column.nullable:
            raise ValueError("may not be null")
        return None
    if isinstance(kind, sa.Boolean):
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, not {value!r}")
        return value
    if isinstance(kind, sa.Integer):  # BigInteger included
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be an integer, not {value!r}")
        return value
    if isinstance(kind, sa.Float):
        if isinstance(value, str) and value in ("Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"must be a number, null, 'Infinity' or '-Infinity', not {value!r}")
        if math.isnan(value):
            return None
        return float(value)
    if isinstance(kind, sa.Date):
        if not isinstance(value, str):
            raise ValueError(f"must be a date (2026-01-31), not {value!r}")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"must be a date (2026-01-31), not {value!r}") from None
    if isinstance(kind, sa.String):
        if not isinstance(value, str):
            raise ValueError(f"must be text, not {value!r}")
        if kind.length is not None and len(value) > kind.length:
            raise ValueError(f"is longer than {kind.length} characters")
        return value
    raise ValueError(f"has an unsupported type {kind}")  # pragma: no cover - schema change


def coerce_rows(name: str, rows: Any, fixed: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of table ``name`` received as JSON (a list of objects keyed by column name),
    checked and converted for :func:`write_screening` / :func:`write_performance`.

    ``fixed`` holds the values every row has (the run id or the model version): a row may
    omit them, but may not contradict them. Dates are ISO strings, infinities
    ``"Infinity"``/``"-Infinity"``. Raises :class:`RowError` naming the row and column.
    """
    if not isinstance(rows, list):
        raise RowError(f"{name} must be a list of rows")
    table = _TABLES[name](None)
    columns = {c.name: c for c in table.columns if c.name not in _SERVER_COLUMNS}
    result = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RowError(f"{name}[{index}] must be an object of column values")
        unknown = sorted(set(row) - set(columns))
        if unknown:
            raise RowError(f"{name}[{index}]: unknown column(s) {', '.join(unknown)}")
        clean = {}
        for column_name, column in columns.items():
            if column_name in fixed:
                if column_name in row and row[column_name] != fixed[column_name]:
                    raise RowError(
                        f"{name}[{index}].{column_name} is {row[column_name]!r}, "
                        f"not {fixed[column_name]!r} as the request says"
                    )
                clean[column_name] = fixed[column_name]
                continue
            if column_name not in row and not column.nullable:
                raise RowError(f"{name}[{index}].{column_name} is missing")
            try:
                clean[column_name] = _coerce(column, row.get(column_name))
            except ValueError as exc:
                raise RowError(f"{name}[{index}].{column_name} {exc}") from None
        result.append(clean)
    return result


def json_value(value: Any) -> Any:
    """A row value as JSON carries it: dates and times in ISO form, NaN and missing as
    null, infinities as ``"Infinity"``/``"-Infinity"`` (JSON has no number for them)."""
    if isinstance(value, pd.Timestamp) and not pd.isna(value):
        return value.isoformat()  # _value would keep only its date
    value = _value(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def report_records(report: pd.DataFrame) -> list[dict[str, Any]]:
    """:func:`pair_report`'s rows as JSON-ready objects (see :func:`json_value`)."""
    return [
        {column: json_value(row[column]) for column in REPORT_COLUMNS}
        for row in report.to_dict("records")
    ]


_REPORT_INTEGERS = ("times_selected", "times_tested", "runs", "model_versions")
_REPORT_NUMBERS = ("best_pvalue", "f1", "auc", "sharpe", "max_drawdown", "trades")
_INFINITIES = {"Infinity": math.inf, "-Infinity": -math.inf}


def report_from_records(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The inverse of :func:`report_records`: a frame like :func:`pair_report`'s."""
    if not rows:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    for column in _REPORT_INTEGERS:
        report[column] = report[column].astype("int64")
    for column in _REPORT_NUMBERS:
        # Whole numbers stay integers (trades, when every pair has some), as read directly.
        report[column] = pd.to_numeric(
            report[column].map(lambda v: _INFINITIES.get(v, v) if isinstance(v, str) else v),
            errors="coerce",
        )
    report["last_selected"] = pd.to_datetime(report["last_selected"], utc=True, format="ISO8601")
    return report


def _legs(table: sa.Table) -> tuple[Any, Any]:
    first = table.c.y <= table.c.x
    return sa.case((first, table.c.y), else_=table.c.x), sa.case(
        (first, table.c.x), else_=table.c.y
    )


def _report_queries(
    schema: str | None, *, sector: str | None, since: datetime | None, limit: int | None
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """Selection counts per unordered pair, and performance per unordered pair."""
    s, p = screening_results(schema), model_performance(schema)
    chosen = sa.case((s.c.selected, 1), else_=0)
    # Either orientation of a pair counts: legs in alphabetical order.
    s_a, s_b = _legs(s)
    p_a, p_b = _legs(p)
    screened = (
        sa.select(
            s.c.sector,
            s_a.label("leg_a"),
            s_b.label("leg_b"),
            sa.func.sum(chosen).label("times_selected"),
            sa.func.count().label("times_tested"),
            sa.func.count(sa.distinct(s.c.run_id)).label("runs"),
            sa.func.min(s.c.p_value).label("best_pvalue"),
            sa.func.max(sa.case((s.c.selected, s.c.created_at))).label("last_selected"),
        )
        .group_by(s.c.sector, s_a, s_b)
        .having(sa.func.sum(chosen) > 0)
        .order_by(sa.desc("times_selected"), sa.asc("best_pvalue"), s_a, s_b)
    )
    performed = sa.select(
        p.c.sector,
        p_a.label("leg_a"),
        p_b.label("leg_b"),
        sa.func.count(sa.distinct(p.c.run_id)).label("model_versions"),
        sa.func.avg(p.c.f1).label("f1"),
        sa.func.avg(p.c.auc).label("auc"),
        sa.func.avg(p.c.sharpe).label("sharpe"),
        sa.func.max(p.c.max_drawdown).label("max_drawdown"),
        sa.func.sum(p.c.trades).label("trades"),
    ).group_by(p.c.sector, p_a, p_b)
    if sector is not None:
        screened = screened.where(s.c.sector == sector)
        performed = performed.where(p.c.sector == sector)
    if since is not None:
        screened = screened.where(s.c.created_at >= since)
        performed = performed.where(p.c.created_at >= since)
    if limit is not None:
        screened = screened.limit(limit)
    return screened, performed


def pair_report(
    uri: str,
    *,
    sector: str | None = None,
    since: datetime | None = None,
    limit: int | None = 20,
    timeout: float = 10.0,
) -> pd.DataFrame:
    """The pairs most often selected by screening (runs since ``since``), with the
    pair-level performance of the model versions that traded them.

    A pair is unordered (``pair`` names its legs alphabetically; a screen may report
    either leg as ``y``). Columns: :data:`REPORT_COLUMNS`; ``f1``, ``auc`` and ``sharpe``
    are means over the recorded trading periods, ``max_drawdown`` the worst (largest),
    ``trades`` the total.

    ``uri`` is the tables' database, or a tracking server that serves them.
    """
    if _is_remote(uri):
        from mlflow_pairs.db.remote import fetch_pair_report

        return fetch_pair_report(uri, sector=sector, since=since, limit=limit)
    uri = absolute_sqlite_uri(uri)
    if ensure_pairs_schema(uri, create=False, timeout=timeout).current is None:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))  # nothing written yet
    what = "cannot read mlflow-pairs tables in"
    with (
        using_engine(uri, what, timeout=timeout) as engine,
        engine.connect() as connection,
    ):
        screened, performed = _report_queries(
            schema_for(connection.dialect.name), sector=sector, since=since, limit=limit
        )
        top = pd.DataFrame(connection.execute(screened).mappings().all())
        perf = pd.DataFrame(connection.execute(performed).mappings().all())
    if top.empty:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    keys = ["sector", "leg_a", "leg_b"]
    if perf.empty:
        perf = pd.DataFrame(columns=[*keys, *REPORT_COLUMNS[7:]])
    report = top.merge(perf, on=keys, how="left")
    report["pair"] = report["leg_a"] + "/" + report["leg_b"]
    report["model_versions"] = report["model_versions"].fillna(0).astype(int)
    # Written in UTC; SQLite gives them back without their zone.
    report["last_selected"] = pd.to_datetime(report["last_selected"], utc=True)
    return report[list(REPORT_COLUMNS)]
