"""Scoring prices with registered ``garch_gru`` models, in batch.

A price file (CSV or Parquet, wide or long) is cut into groups: one per sector when the
file has a ``sector`` column and the model name holds ``{sector}`` (each sector scored
by its own model), else one group scored by one model. Each group becomes one pyfunc
request holding the model's symbols over the history the model needs, and the output is
the pyfunc's own rows (``docs/model.md``, "pyfunc contract")::

    plan = plan_scoring("prices.parquet", "pairs_trading_gru_garch_{sector}@champion",
                        connection=MlflowConnection(settings))
    table = score_local(plan)

:func:`score_local` runs the requests in this process; ``mlflow_pairs.spark.score`` runs
the same requests as Spark tasks and returns the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlflow_pairs._text import encoding_of
from mlflow_pairs.data.errors import DataError
from mlflow_pairs.data.files import format_of, read_price_file
from mlflow_pairs.data.validation import (
    check_date_index,
    check_no_missing,
    check_numeric,
    check_positive_finite,
)
from mlflow_pairs.errors import InvalidInputError, NotFoundError, UsageError

if TYPE_CHECKING:
    from mlflow_pairs.model import GarchGruModel
    from mlflow_pairs.tracking import MlflowConnection

__all__ = [
    "SECTOR_PLACEHOLDER",
    "ScoringGroup",
    "ScoringPlan",
    "empty_output",
    "load_scoring_model",
    "model_uri",
    "output_frame",
    "plan_scoring",
    "predict_group",
    "read_sector_prices",
    "request_prices",
    "resolve_model_uri",
    "score_local",
]

#: In a model name, stands for each sector group's sector.
SECTOR_PLACEHOLDER = "{sector}"

#: The model config batch scoring loads a model with: no request-size cap (the cap is
#: for a scoring server; ``$MLFLOW_PAIRS_MAX_REQUEST_ROWS`` still wins when set).
MODEL_CONFIG: dict[str, Any] = {"max_request_rows": 0}

_SECTOR_COLUMN = "sector"
_SYMBOL_COLUMNS = ("symbol", "ticker")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
_REGISTERED = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))")


@dataclass(frozen=True)
class ScoringGroup:
    """One pyfunc request: a sector's prices (``sector`` is None for the whole file) for
    the model at ``model_uri`` (a fixed version: an alias is resolved once, so every
    group and every Spark task scores with the same version).

    ``prices`` is a float64 DataFrame of shape (n_dates, n_symbols): a DatetimeIndex
    named ``date`` and the model's symbols, checked as the model checks them, from
    ``min_history`` dates before the first date after the model's data (all dates with
    ``all_dates``).
    """

    sector: str | None
    model_uri: str
    prices: pd.DataFrame


@dataclass(frozen=True)
class ScoringPlan:
    """The requests of one scoring job and what runs them.

    ``models`` holds the loaded pyfunc of each model URI (this process's copies);
    ``tracking_uri`` and ``registry_uri`` are where a Spark executor loads them from.
    """

    groups: tuple[ScoringGroup, ...]
    params: dict[str, Any]
    tracking_uri: str
    registry_uri: str
    models: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def model_uris(self) -> list[str]:
        """The distinct model URIs, in group order."""
        return list(dict.fromkeys(group.model_uri for group in self.groups))


def model_uri(model: str, sector: str | None = None) -> str:
    """The MLflow URI of ``model``, with ``{sector}`` replaced by ``sector``.

    ``NAME@ALIAS`` becomes ``models:/NAME@ALIAS`` and ``NAME/VERSION``
    ``models:/NAME/VERSION``; a URI (``models:/``, ``runs:/``, ``s3://``...) or a local
    model folder is used as given.
    """
    text = model.strip()
    if sector is not None:
        text = text.replace(SECTOR_PLACEHOLDER, sector)
    if _SCHEME.match(text) or Path(text).is_dir():
        return text
    match = re.fullmatch(r"(?P<name>[^/@\s]+)(?:@(?P<alias>[^/@\s]+)|/(?P<version>\d+))", text)
    if match is None:
        raise UsageError(
            f"--model {model!r}: give NAME@ALIAS, models:/NAME/VERSION or runs:/RUN_ID/PATH"
        )
    if match["alias"]:
        return f"models:/{match['name']}@{match['alias']}"
    return f"models:/{match['name']}/{match['version']}"


def resolve_model_uri(connection: MlflowConnection, uri: str) -> str:
    """``uri`` with a registry alias resolved to its version (``models:/NAME/VERSION``).

    Raises
    ------
    NotFoundError
        The registered model, alias or version does not exist (names what does).
    """
    from mlflow.exceptions import MlflowException

    match = _REGISTERED.fullmatch(uri)
    if match is None:
        return uri
    name = match["name"]
    client = connection.client
    try:
        registered = client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in client.search_registered_models(max_results=50))
        raise NotFoundError(
            f"no registered model {name!r} (registered: {', '.join(names) or 'none'})"
        ) from None
    versions = sorted((str(v.version) for v in connection.list_versions(name)), key=int)
    aliases = dict(registered.aliases or {})
    if match["alias"]:
        if match["alias"] not in aliases:
            shown = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
            raise NotFoundError(
                f"model {name!r} has no alias {match['alias']!r} (aliases: {shown}; "
                f"versions: {', '.join(versions) or 'none'})"
            )
        return f"models:/{name}/{aliases[match['alias']]}"
    if match["version"].isdigit() and match["version"] not in versions:
        raise NotFoundError(
            f"model {name!r} has no version {match['version']} (versions: "
            f"{', '.join(versions) or 'none'})"
        )
    return uri


def load_scoring_model(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)`` without the request-size cap, checked to be a
    ``garch_gru`` model. Uses MLflow's current tracking and registry URIs."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from mlflow_pairs.flavor import FLAVOR_NAME

    try:
        model = mlflow.pyfunc.load_model(uri, model_config=MODEL_CONFIG)
    except (MlflowException, OSError) as exc:
        raise NotFoundError(f"cannot load model {uri}: {_first_line(exc)}") from None
    flavors = sorted((model.metadata.flavors or {}).keys())
    if FLAVOR_NAME not in flavors:
        raise UsageError(
            f"model {uri} is not a {FLAVOR_NAME} model (flavors: {', '.join(flavors)})"
        )
    return model


def read_sector_prices(path: str | Path, *, by_sector: bool) -> dict[str | None, pd.DataFrame]:
    """The prices of ``path`` as wide frames (DatetimeIndex, one column per symbol, as
    :func:`~mlflow_pairs.data.files.read_price_file` reads them), one per sector.

    With ``by_sector`` the file must be long with a ``sector`` column, each symbol in
    one sector; the keys are the sectors in sorted order. Otherwise the one key is None.
    """
    path = Path(path)
    wide = read_price_file(path)
    if not by_sector:
        return {None: wide}
    sectors = _symbol_sectors(path)
    groups: dict[str | None, pd.DataFrame] = {}
    for sector in sorted(set(sectors.values())):
        symbols = [s for s in wide.columns if sectors.get(s) == sector]
        groups[sector] = wide[symbols].dropna(how="all")
    return groups


def request_prices(
    prices: pd.DataFrame,
    model: GarchGruModel,
    *,
    all_dates: bool,
    origin: str,
    model_name: str = "the model",
) -> pd.DataFrame:
    """The model's request from a group's wide ``prices``: its symbols, checked as the
    model checks them and parsed to float64 as the model parses them, over the history it
    needs.

    Dates on which none of the model's symbols has a price (another sector's calendar)
    are dropped. Without ``all_dates`` the request starts ``min_history`` dates before the
    first date after the model's data (the documented minimum: the latest row is then the
    walk-forward's, whatever came before); with it, every date is kept.

    Raises
    ------
    DataError
        A symbol of the model is missing, or a price is missing, not a number or not
        positive; the dates are duplicated or unsorted; fewer than ``min_history`` dates.
    """
    missing = [s for s in model.symbols if s not in prices.columns]
    if missing:
        raise DataError(
            "unknown-symbols",
            f"{origin}: no prices of {', '.join(missing)} ({model_name} needs "
            f"{', '.join(model.symbols)})",
            symbols=missing,
        )
    frame = prices[model.symbols].dropna(how="all")
    check_date_index(frame, origin)
    check_positive_finite(check_numeric(frame, origin), origin)
    check_no_missing(frame, origin, "none (the model does not fill gaps)")
    if len(frame) < model.min_history:
        raise DataError(
            "too-few-observations",
            f"{origin}: {len(frame)} dates, the model needs at least {model.min_history}",
            symbols=list(model.symbols),
        )
    # As the model does: text parsed by NumPy (correctly rounded), so the values sent are
    # the values the model would have read from the text.
    values = frame.to_numpy(dtype=float)
    index = pd.DatetimeIndex(frame.index, name="date").as_unit("ns")
    checked = pd.DataFrame(values, index=index, columns=list(model.symbols))
    if all_dates:
        return checked
    first_new = int(index.searchsorted(pd.Timestamp(model.data_end_), side="right"))
    return checked.iloc[max(0, first_new - model.min_history) :]


def plan_scoring(
    prices: str | Path,
    model: str,
    *,
    connection: MlflowConnection,
    all_dates: bool = False,
    params: Mapping[str, Any] | None = None,
) -> ScoringPlan:
    """Read ``prices``, resolve and load the model of each group, and build its request.

    Parameters
    ----------
    prices : path
        A CSV or Parquet price file, wide or long; long with a ``sector`` column when
        ``model`` holds ``{sector}``.
    model : str
        ``NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/RUN_ID/PATH``; with
        ``{sector}`` in it (``pairs_trading_gru_garch_{sector}@champion``) each sector
        group is scored by its sector's model.
    connection : MlflowConnection
        The tracking store and model registry.
    all_dates : bool
        One row per pair and date (the pyfunc's ``all_dates``) instead of the latest date.
    params : mapping, optional
        Further pyfunc params (``entry_z``, ``exit_z``, ``stop_z``, ``min_probability``,
        ``max_holding``).

    Raises
    ------
    MlflowPairsError
        Bad input, one line: the file, a group's prices, the model name, a model that
        does not exist or is not a ``garch_gru`` model.
    """
    by_sector = SECTOR_PLACEHOLDER in model
    if by_sector and _SCHEME.match(model.strip()) and not model.strip().startswith("models:/"):
        raise UsageError(f"--model {model!r}: {{sector}} needs a registered model name")
    model_uri(model, "sector" if by_sector else None)  # a malformed name fails before reading
    groups = read_sector_prices(prices, by_sector=by_sector)
    connection.check()
    connection.activate()
    resolved: dict[str, str] = {}
    models: dict[str, Any] = {}
    requests = []
    for sector, frame in groups.items():
        wanted = model_uri(model, sector)
        origin = f"price file {prices}" + (f", sector {sector}" if sector is not None else "")
        try:
            if wanted not in resolved:
                resolved[wanted] = resolve_model_uri(connection, wanted)
                if resolved[wanted] not in models:
                    models[resolved[wanted]] = load_scoring_model(resolved[wanted])
        except (NotFoundError, UsageError) as exc:
            if sector is None:
                raise
            raise type(exc)(f"sector {sector}: {exc}") from None
        uri = resolved[wanted]
        native = models[uri].get_raw_model()
        requests.append(
            ScoringGroup(
                sector,
                uri,
                request_prices(frame, native, all_dates=all_dates, origin=origin, model_name=uri),
            )
        )
    return ScoringPlan(
        groups=tuple(requests),
        params={**(params or {}), "all_dates": all_dates},
        tracking_uri=connection.tracking_uri,
        registry_uri=connection.registry_uri,
        models=models,
    )


def predict_group(pyfunc: Any, prices: pd.DataFrame, params: Mapping[str, Any]) -> pd.DataFrame:
    """``pyfunc.predict`` on one group's request (wide, ``date`` as a column).

    Raises
    ------
    InvalidInputError
        The model refused the request or a param (one line).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode

    try:
        return pyfunc.predict(prices.reset_index(names="date"), params=dict(params))
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(INVALID_PARAMETER_VALUE):
            raise
        raise InvalidInputError(_first_line(exc)) from None


def score_local(plan: ScoringPlan) -> pd.DataFrame:
    """The plan's requests scored in this process: the pyfunc's rows, group after group
    (in the order of :attr:`ScoringPlan.groups`), each in the pyfunc's order."""
    frames = [
        predict_group(plan.models[group.model_uri], group.prices, plan.params)
        for group in plan.groups
    ]
    if not frames:
        return empty_output()
    return pd.concat(frames, ignore_index=True)


def output_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """The pyfunc's output columns from ``columns`` (arrays or Series), typed as the
    model types them: names as text, ``date`` as datetime64[ns], ``signal`` as int64,
    the rest float64."""
    from mlflow_pairs.model import OUTPUT_COLUMNS

    kinds: dict[str, Any] = {"pair": object, "y": object, "x": object, "signal": np.int64}
    kinds["date"] = "datetime64[ns]"
    return pd.DataFrame(
        {c: np.asarray(columns[c]).astype(kinds.get(c, np.float64)) for c in OUTPUT_COLUMNS}
    )


def empty_output() -> pd.DataFrame:
    """No rows, the pyfunc's columns and types."""
    from mlflow_pairs.model import OUTPUT_COLUMNS

    return output_frame({c: [] for c in OUTPUT_COLUMNS})


def _symbol_sectors(path: Path) -> dict[str, str]:
    """``{symbol: sector}`` from a long file's ``symbol`` and ``sector`` columns."""
    names = _column_names(path)
    lowered = {str(n).strip().lower(): n for n in names}
    symbol = next((lowered[n] for n in _SYMBOL_COLUMNS if n in lowered), None)
    sector = lowered.get(_SECTOR_COLUMN)
    if symbol is None or sector is None:
        raise DataError(
            "sectors",
            f"price file {path}: scoring by {SECTOR_PLACEHOLDER} needs a long table with "
            "'symbol' and 'sector' columns (date, symbol, price, sector)",
        )
    table = _read_columns(path, [symbol, sector])
    table.columns = ["symbol", "sector"]
    table["symbol"] = table["symbol"].astype(str).str.strip()
    absent = table["sector"].isna().to_numpy()
    table["sector"] = table["sector"].astype(str).str.strip()
    blank = absent | (table["sector"] == "").to_numpy()
    if blank.any():
        row = int(blank.argmax())
        raise DataError(
            "sectors",
            f"price file {path}: row {row + 2} ({table['symbol'].iloc[row]}) has no sector",
            symbols=[table["symbol"].iloc[row]],
        )
    pairs = table.drop_duplicates()
    repeated = pairs["symbol"][pairs["symbol"].duplicated()]
    if len(repeated):
        symbol_name = repeated.iloc[0]
        both = sorted(pairs.loc[pairs["symbol"] == symbol_name, "sector"])
        raise DataError(
            "sectors",
            f"price file {path}: {symbol_name} is in more than one sector ({', '.join(both)})",
            symbols=[symbol_name],
        )
    return dict(zip(pairs["symbol"], pairs["sector"], strict=True))


def _column_names(path: Path) -> list[str]:
    try:
        if format_of(path) == "parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0, encoding=_encoding(path)).columns)
    except (OSError, ValueError) as exc:
        raise DataError("file", f"cannot read price file {path}: {exc}") from None


def _read_columns(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        if format_of(path) == "parquet":
            return pd.read_parquet(path, columns=columns).astype(object)
        return pd.read_csv(path, usecols=columns, dtype=str, encoding=_encoding(path))[columns]
    except (OSError, ValueError) as exc:
        raise DataError("file", f"cannot read price file {path}: {exc}") from None


def _encoding(path: Path) -> str:
    """As the price-file reader decides it: compressed files are UTF-8, others by their
    byte-order mark."""
    if any(s.lower() in (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar") for s in path.suffixes):
        return "utf-8-sig"
    with path.open("rb") as handle:
        return encoding_of(handle.read(4))


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
