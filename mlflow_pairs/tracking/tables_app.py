"""The project's tables served by the MLflow tracking server.

Two MLflow server apps (entry point group ``mlflow.app``), chosen with ``mlflow server
--app-name`` or ``mlflow-pairs server --app-name``:

``pairs``
    MLflow's server plus the endpoints below, without authentication.
``pairs-auth``
    The same endpoints composed with MLflow's basic-auth app (``basic-auth``): every
    request needs the MLflow login MLflow's own endpoints need, and MLflow's permissions
    apply (writing a run's screening rows needs permission to update the run; writing a
    model version's performance rows, permission to update the registered model; reading
    the report, any login).

Endpoints (paths in :mod:`mlflow_pairs.db.remote`), JSON in and out, errors as MLflow's
``{"error_code": ..., "message": ...}`` with a one-line message:

* ``GET /api/2.0/mlflow-pairs/tables``: the tables' alembic revision and head.
* ``GET /api/2.0/mlflow-pairs/report/pairs?sector=&since=&limit=``: ``report pairs``.
* ``POST /api/2.0/mlflow-pairs/screening-results``: ``{"run_id", "screening_results":
  [rows], "variance_stability": [rows]}`` replaces the run's rows.
* ``POST /api/2.0/mlflow-pairs/model-performance``: ``{"name", "version", "rows":
  [rows]}`` replaces the model version's rows.

The tables live in the server's backend store (the database ``mlflow server`` was given),
beside MLflow's tables; clients need no database password.

Both apps also answer an artifact upload that the artifact store refuses for space with
HTTP 507 and the reason, which MLflow's client reports at once (a 500 it retries for
minutes). ``pairs`` is ``mlflow-pairs server``'s default app (``server.app_name``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.util
import logging
import os
import warnings
from collections.abc import Callable
from typing import Any

from mlflow_pairs.db.remote import PERFORMANCE_PATH, REPORT_PATH, SCREENING_PATH, STATUS_PATH
from mlflow_pairs.errors import ConfigError, DatabaseError
from mlflow_pairs.secrets import mask_uri, redact

__all__ = [
    "AUTH_APP_NAMES",
    "check_server_app",
    "create_app",
    "create_auth_app",
    "register_tables_endpoints",
]

_logger = logging.getLogger(__name__)

#: MLflow server apps that need MLflow's auth extra, a secret key and an admin user.
AUTH_APP_NAMES = ("basic-auth", "pairs-auth")
#: What ``report pairs`` may be asked for, at most.
_MAX_LIMIT = 1_000_000
_REPORT_PARAMETERS = ("sector", "since", "limit")
_ENDPOINT_PREFIX = "mlflow_pairs_"
#: A full file system (or quota), as ``OSError.errno``.
_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


class _BadRequest(ValueError):
    """A request the endpoints answer with HTTP 400 and this message."""


def _store_uri() -> str:
    """The server's backend store, where the tables live (beside MLflow's)."""
    from mlflow.server.constants import BACKEND_STORE_URI_ENV_VAR

    from mlflow_pairs._uris import is_database_uri, normalise_store_uri

    uri = os.environ.get(BACKEND_STORE_URI_ENV_VAR, "")
    if not is_database_uri(uri):
        raise DatabaseError(
            "this server's backend store is not a database, so it has no mlflow-pairs "
            "tables (start it on PostgreSQL or SQLite)"
        )
    return normalise_store_uri(uri)


def _answer(status: int, code: str, message: str) -> Any:
    from flask import jsonify

    response = jsonify({"error_code": code, "message": message})
    response.status_code = status
    return response


def _endpoint(view: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    """A view returning JSON; bad input is HTTP 400, a database failure HTTP 503, each
    with one line (the database's address is masked and not sent)."""

    @functools.wraps(view)
    def handle() -> Any:
        from flask import jsonify

        try:
            return jsonify(view())
        except _BadRequest as exc:
            return _answer(400, "INVALID_PARAMETER_VALUE", redact(str(exc)))
        except DatabaseError as exc:
            text = redact(str(exc))
            _logger.warning("mlflow-pairs tables: %s", text)
            with contextlib.suppress(DatabaseError):
                text = text.replace(mask_uri(_store_uri()), "the server's database")
            return _answer(503, "TEMPORARILY_UNAVAILABLE", f"mlflow-pairs tables: {text}")

    return handle


def _status() -> dict[str, Any]:
    from mlflow_pairs.db import pairs_schema_status

    status = pairs_schema_status(_store_uri())
    return {"revision": status.current, "head": status.head}


def _report() -> dict[str, Any]:
    from flask import request

    from mlflow_pairs.db.records import (
        REPORT_COLUMNS,
        RowError,
        pair_report,
        parse_since,
        report_records,
    )

    args = request.args
    unknown = sorted(set(args) - set(_REPORT_PARAMETERS))
    if unknown:
        raise _BadRequest(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(_REPORT_PARAMETERS)}"
        )
    for name in _REPORT_PARAMETERS:
        if len(args.getlist(name)) > 1:
            raise _BadRequest(f"parameter {name} given more than once")
    sector = args.get("sector") or None
    if sector is not None and len(sector) > 64:
        raise _BadRequest("sector is longer than 64 characters")
    try:
        since = parse_since(args.get("since") or None)
    except RowError as exc:
        raise _BadRequest(f"since: {exc}") from None
    raw_limit = args.get("limit", "20").strip()
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= _MAX_LIMIT:
        raise _BadRequest(f"limit must be a whole number from 1 to {_MAX_LIMIT}, not {raw_limit!r}")
    report = pair_report(_store_uri(), sector=sector, since=since, limit=int(raw_limit))
    return {"columns": list(REPORT_COLUMNS), "rows": report_records(report)}


def _body() -> dict[str, Any]:
    from flask import request

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, longest: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > longest:
        raise _BadRequest(f"{name} must be a non-empty string of at most {longest} characters")
    return value


def _screening() -> dict[str, Any]:
    from mlflow_pairs.db.records import RowError, coerce_rows, write_screening

    body = _body()
    unknown = sorted(set(body) - {"run_id", "screening_results", "variance_stability"})
    if unknown:
        raise _BadRequest(f"unknown field(s) {', '.join(unknown)}")
    run_id = _text(body, "run_id", 32)
    try:
        screening = coerce_rows(
            "screening_results", body.get("screening_results", []), {"run_id": run_id}
        )
        stability = coerce_rows(
            "variance_stability", body.get("variance_stability", []), {"run_id": run_id}
        )
    except RowError as exc:
        raise _BadRequest(str(exc)) from None
    return {"counts": write_screening(_store_uri(), run_id, screening, stability)}


def _performance() -> dict[str, Any]:
    from mlflow_pairs.db.records import RowError, coerce_rows, write_performance

    body = _body()
    unknown = sorted(set(body) - {"name", "version", "rows"})
    if unknown:
        raise _BadRequest(f"unknown field(s) {', '.join(unknown)}")
    name = _text(body, "name", 256)
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _BadRequest(f"version must be a positive integer, not {version!r}")
    fixed = {"model_name": name, "model_version": version}
    try:
        rows = coerce_rows("model_performance", body.get("rows", []), fixed)
    except RowError as exc:
        raise _BadRequest(str(exc)) from None
    counts = write_performance(_store_uri(), rows, model_name=name, model_version=version)
    return {"counts": counts}


_ROUTES: tuple[tuple[str, str, Callable[[], dict[str, Any]]], ...] = (
    (STATUS_PATH, "GET", _status),
    (REPORT_PATH, "GET", _report),
    (SCREENING_PATH, "POST", _screening),
    (PERFORMANCE_PATH, "POST", _performance),
)


def _full_disk_body(exc: OSError, method: str, path: str) -> dict[str, str]:
    """A full disk (an upload the artifact store refused for space) is answered HTTP 507
    with the reason: MLflow's client retries a 500 for minutes, but not a 507, and shows
    the answer's text, so the run ends at once with "no space left" instead of "too many
    500 error responses". Any other ``OSError`` is raised again: MLflow's 500, logged with
    its traceback."""
    if exc.errno is None or exc.errno not in _FULL_ERRNOS:
        raise exc
    _logger.error("%s %s: %s", method, path, redact(str(exc)))
    return {
        "error_code": "RESOURCE_EXHAUSTED",
        "message": f"{os.strerror(exc.errno)} on the tracking server's artifact store; "
        "free space there and retry",
    }


def _flask_full_disk(exc: OSError) -> Any:
    """:func:`_full_disk_body` for the Flask app (gunicorn, waitress)."""
    from flask import request

    body = _full_disk_body(exc, request.method, request.path)
    return _answer(507, body["error_code"], body["message"])


async def _asgi_full_disk(request: Any, exc: Exception) -> Any:
    """:func:`_full_disk_body` for the FastAPI app (uvicorn, MLflow's default), whose own
    routes take artifact uploads."""
    from starlette.responses import JSONResponse

    if not isinstance(exc, OSError):
        raise exc
    return JSONResponse(_full_disk_body(exc, request.method, request.url.path), status_code=507)


def register_tables_endpoints(app: Any) -> None:
    """Add the endpoints to MLflow's Flask ``app``, and the answer to a full disk (once; a
    second call does nothing)."""
    for path, method, view in _ROUTES:
        name = _ENDPOINT_PREFIX + view.__name__.lstrip("_")
        if name not in app.view_functions:
            app.add_url_rule(path, endpoint=name, view_func=_endpoint(view), methods=[method])
    app.register_error_handler(OSError, _flask_full_disk)


def _served(flask_app: Any) -> Any:
    """What the server runs: MLflow wraps its Flask app in FastAPI under uvicorn (its
    default), and serves the Flask app itself under gunicorn or waitress."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return _answering_full_disks(create_fastapi_app(flask_app))
    return flask_app


def _answering_full_disks(served: Any) -> Any:
    """``served`` (MLflow's FastAPI app, or its Flask app) answering a full disk with 507."""
    if hasattr(served, "add_exception_handler"):
        served.add_exception_handler(OSError, _asgi_full_disk)
    return served


def create_app() -> Any:
    """The ``pairs`` app: MLflow's server with the mlflow-pairs endpoints, no login."""
    from mlflow.server import app as flask_app

    register_tables_endpoints(flask_app)
    return _served(flask_app)


def _any_login() -> bool:
    return True  # basic-auth has authenticated the request before asking


def create_auth_app() -> Any:
    """The ``pairs-auth`` app: MLflow's basic-auth app with the mlflow-pairs endpoints.

    basic-auth authenticates every request, then asks the validator registered for the
    path and method (and, failing closed by default, refuses a path without one to anyone
    but an admin). The write endpoints carry ``run_id`` / ``name`` at the top of their
    JSON body, which is where MLflow's own run and registered-model validators read them.
    """
    from mlflow.server import app as flask_app
    from mlflow.server import auth

    register_tables_endpoints(flask_app)
    auth.BEFORE_REQUEST_VALIDATORS.update(
        {
            (STATUS_PATH, "GET"): _any_login,
            (REPORT_PATH, "GET"): _any_login,
            (SCREENING_PATH, "POST"): auth.validate_can_update_run,
            (PERFORMANCE_PATH, "POST"): auth.validate_can_update_registered_model,
        }
    )
    return _answering_full_disks(auth.create_app(flask_app))


def check_server_app(app_name: str) -> None:
    """Before ``mlflow server --app-name`` starts: the app must be installed, and an
    authenticated one must have MLflow's auth extra, a secret key and its admin user
    (created now, as ``mlflow server`` does for ``basic-auth``), so a missing piece is one
    line instead of a server that never answers. Raises :class:`ConfigError`.
    """
    from importlib.metadata import entry_points

    names = sorted({ep.name for ep in entry_points(group="mlflow.app")})
    if app_name not in names:
        raise ConfigError(
            f"--app-name {app_name}: no such MLflow server app (installed: "
            f"{', '.join(names) or 'none'})"
        )
    if app_name not in AUTH_APP_NAMES:
        return
    if importlib.util.find_spec("flask_wtf") is None:
        raise ConfigError(
            f"--app-name {app_name} needs MLflow's auth extra: pip install 'mlflow-pairs[auth]'"
        )
    if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        raise ConfigError(
            f"--app-name {app_name} needs MLFLOW_FLASK_SERVER_SECRET_KEY: set it to a long "
            "random string, the same for every server (see docs/authentication.md)"
        )
    try:
        with warnings.catch_warnings():
            # Deprecation notices of MLflow's server imports are not this command's output.
            warnings.simplefilter("ignore")
            from mlflow.server.auth import bootstrap_admin_user

        bootstrap_admin_user()
    except Exception as exc:  # MLflow's own message, or the auth database's error
        text = str(getattr(exc, "message", exc)).strip().splitlines()
        detail = redact(text[0]) if text else type(exc).__name__
        raise ConfigError(f"--app-name {app_name}: {detail}") from None
