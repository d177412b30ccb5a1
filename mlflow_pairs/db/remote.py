"""The project's tables through an MLflow tracking server, with the client's MLflow
credentials: the client needs the tracking URI and its MLflow login, no database password.

The server side is :mod:`mlflow_pairs.tracking.tables_app` (``mlflow server --app-name
pairs`` or ``pairs-auth``). Requests are made the way MLflow's own client makes them
(:func:`mlflow.utils.rest_utils.http_request` with the credentials MLflow reads:
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, ``MLFLOW_TRACKING_TOKEN``,
``~/.mlflow/credentials``, the TLS settings), so whatever logs runs to the server also
reaches the tables.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from mlflow_pairs.errors import ConfigError, TrackingConnectionError, UsageError
from mlflow_pairs.secrets import mask_uri, redact

if TYPE_CHECKING:
    import pandas as pd
    import requests

    from mlflow_pairs.config import Settings

__all__ = [
    "API_ROOT",
    "PERFORMANCE_PATH",
    "REPORT_PATH",
    "SCREENING_PATH",
    "STATUS_PATH",
    "fetch_pair_report",
    "fetch_status",
    "offers_tables",
    "post_performance",
    "post_screening",
    "tables_target",
]

#: Where the endpoints live on the tracking server (beside MLflow's ``/api/2.0/mlflow``).
API_ROOT = "/api/2.0/mlflow-pairs"
#: GET: the tables' revision (whether the server offers them at all).
STATUS_PATH = f"{API_ROOT}/tables"
#: GET ``?sector=&since=&limit=``: :func:`mlflow_pairs.db.records.pair_report` as JSON.
REPORT_PATH = f"{API_ROOT}/report/pairs"
#: POST: a run's screening and variance-stability rows.
SCREENING_PATH = f"{API_ROOT}/screening-results"
#: POST: a registered model version's pair-level performance rows.
PERFORMANCE_PATH = f"{API_ROOT}/model-performance"

_HINT_APP = "start it with `mlflow-pairs server --app-name pairs` (or pairs-auth)"


def _request(
    uri: str,
    method: str,
    path: str,
    what: str,
    *,
    timeout: float,
    params: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> requests.Response:
    """One request to the server at ``uri``; a failure to get any answer is one line."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    kwargs: dict[str, Any] = {"params": params} if params else {}
    if body is not None:
        kwargs["json"] = body
    try:
        response = http_request(
            creds, path, method, max_retries=0, timeout=timeout, raise_on_status=False, **kwargs
        )
        return cast("requests.Response", response)
    except MlflowException as exc:  # connection refused, DNS, TLS, timeout...
        raise TrackingConnectionError(
            f"cannot {what}: no answer from the tracking server at {mask_uri(uri)} "
            f"({_reason(str(exc.message), timeout)})"
        ) from None


def _reason(text: str, timeout: float) -> str:
    """The gist of a requests failure that MLflow wrapped in one long line."""
    if "timeout" in text.lower() or "timed out" in text.lower():
        return f"no answer within {timeout:g} s"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return errno.group(1).strip().rstrip(".")
    lines = text.strip().splitlines()
    return redact(lines[0]) if lines else "no detail"


def _message(response: requests.Response) -> str:
    """The server's one-line message (MLflow's ``{"message": ...}``, else the text)."""
    try:
        data = response.json()
        text = str(data.get("message", "")) if isinstance(data, dict) else ""
    except ValueError:
        text = ""
    if not text:
        text = response.text or response.reason or ""
    lines = text.strip().splitlines()
    return redact(lines[0].strip()) if lines else f"HTTP {response.status_code}"


def _check(response: requests.Response, uri: str, what: str) -> dict[str, Any]:
    """The JSON answer of a successful request; any other answer becomes one line naming
    what was attempted, the server and what to do."""
    where = mask_uri(uri)
    status = response.status_code
    if status == 200:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TrackingConnectionError(
                f"cannot {what}: {where} answered with something other than a JSON object "
                f"(is it an MLflow server with the mlflow-pairs app? {_HINT_APP})"
            )
        return data
    if status == 401:
        from mlflow.utils.credentials import read_mlflow_creds

        creds = read_mlflow_creds()
        if not creds.username or not creds.password:
            raise TrackingConnectionError(
                f"cannot {what}: the tracking server at {where} requires a login; set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            )
        raise TrackingConnectionError(
            f"cannot {what}: the tracking server at {where} rejected the login of user "
            f"{creds.username!r} (check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
        )
    if status == 403:
        raise TrackingConnectionError(
            f"cannot {what}: the tracking server at {where} denied it to this user "
            f"({_message(response)}); an MLflow admin can grant the permission"
        )
    if status == 404:
        raise TrackingConnectionError(
            f"cannot {what}: the tracking server at {where} does not serve the mlflow-pairs "
            f"tables; {_HINT_APP}"
        )
    if status == 400:
        raise UsageError(f"cannot {what}: the tracking server refused it: {_message(response)}")
    raise TrackingConnectionError(
        f"cannot {what}: the tracking server at {where} answered HTTP {status}: "
        f"{_message(response)}"
    )


def offers_tables(uri: str, *, timeout: float = 10.0) -> bool:
    """Whether the tracking server at ``uri`` serves the mlflow-pairs tables.

    ``False`` when it answers 404 (an MLflow server without the app); a login it requires
    and does not get, or no answer at all, raises :class:`TrackingConnectionError`, since
    MLflow's own requests would fail the same way.
    """
    what = "reach the mlflow-pairs tables"
    response = _request(uri, "GET", STATUS_PATH, what, timeout=timeout)
    if response.status_code == 404:
        return False
    _check(response, uri, what)
    return True


def fetch_status(uri: str, *, timeout: float = 10.0) -> tuple[str | None, str | None]:
    """The tables' alembic revision and head on the server at ``uri`` (the revision is
    ``None`` before the first write), e.g. for ``doctor``."""
    what = "reach the mlflow-pairs tables"
    data = _check(_request(uri, "GET", STATUS_PATH, what, timeout=timeout), uri, what)
    revision, head = data.get("revision"), data.get("head")
    return (
        revision if isinstance(revision, str) else None,
        head if isinstance(head, str) else None,
    )


def tables_target(settings: Settings, tracking_uri: str | None = None) -> str | None:
    """Where the project's tables are read and written: the tracking server when it serves
    them, else a database (:func:`mlflow_pairs.config.tables_uri`), or ``None`` when
    ``tables.uri`` is off.

    With ``tables.uri: auto`` and an ``http(s)`` tracking URI, the server is asked first,
    so a client of a server that serves the tables needs no database password. An explicit
    ``http(s)`` ``tables.uri`` names the server itself.
    """
    from mlflow_pairs._uris import is_http_uri
    from mlflow_pairs.config import tables_uri

    tracking = tracking_uri or settings.mlflow.tracking_uri
    if settings.tables.uri.strip().lower() == "auto" and is_http_uri(tracking):
        if offers_tables(tracking):
            return tracking.rstrip("/")
        try:
            return tables_uri(settings, tracking_uri)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc} (the tracking server at {mask_uri(tracking)} does not serve the "
                f"mlflow-pairs tables, so they are reached in its database; or {_HINT_APP})"
            ) from None
    return tables_uri(settings, tracking_uri)


def fetch_pair_report(
    uri: str,
    *,
    sector: str | None = None,
    since: datetime | None = None,
    limit: int | None = 20,
    timeout: float = 60.0,
) -> pd.DataFrame:
    """:func:`mlflow_pairs.db.records.pair_report`, answered by the server at ``uri``."""
    from mlflow_pairs.db.records import report_from_records

    params = {}
    if sector is not None:
        params["sector"] = sector
    if since is not None:
        params["since"] = since.isoformat()
    if limit is not None:
        params["limit"] = str(limit)
    what = "read the mlflow-pairs tables"
    response = _request(uri, "GET", REPORT_PATH, what, timeout=timeout, params=params)
    rows = _check(response, uri, what).get("rows")
    if not isinstance(rows, list):
        raise TrackingConnectionError(f"cannot {what}: {mask_uri(uri)} sent no rows")
    return report_from_records(rows)


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from mlflow_pairs.db.records import json_value

    return [{key: json_value(value) for key, value in row.items()} for row in rows]


def post_screening(
    uri: str,
    run_id: str,
    screening: list[dict[str, Any]],
    stability: list[dict[str, Any]],
    *,
    timeout: float = 300.0,
) -> dict[str, int]:
    """:func:`mlflow_pairs.db.records.write_screening` on the server at ``uri`` (which
    checks that the user may update the run); returns the rows written per table."""
    body = {
        "run_id": run_id,
        "screening_results": _json_rows(screening),
        "variance_stability": _json_rows(stability),
    }
    what = f"write the screening rows of run {run_id}"
    response = _request(uri, "POST", SCREENING_PATH, what, timeout=timeout, body=body)
    return _counts(_check(response, uri, what), uri, what)


def post_performance(
    uri: str,
    rows: list[dict[str, Any]],
    *,
    model_name: str,
    model_version: int,
    timeout: float = 300.0,
) -> dict[str, int]:
    """:func:`mlflow_pairs.db.records.write_performance` on the server at ``uri`` (which
    checks that the user may update the registered model)."""
    body = {"name": model_name, "version": int(model_version), "rows": _json_rows(rows)}
    what = f"write the performance rows of {model_name} version {model_version}"
    response = _request(uri, "POST", PERFORMANCE_PATH, what, timeout=timeout, body=body)
    return _counts(_check(response, uri, what), uri, what)


def _counts(data: dict[str, Any], uri: str, what: str) -> dict[str, int]:
    counts = data.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
        raise TrackingConnectionError(f"cannot {what}: {mask_uri(uri)} sent no row counts")
    return {str(name): int(n) for name, n in counts.items()}
