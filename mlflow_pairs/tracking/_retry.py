"""Bounded retries for MLflow's database stores, as MLflow's HTTP client retries requests.

With ``mlflow.tracking_uri`` a database URI, MLflow talks to the database itself: a
restart or a short outage then fails the first call that meets it (``TEMPORARILY_
UNAVAILABLE``, with a traceback logged for every failed call), where the same outage
behind a tracking server is retried by MLflow's HTTP client. :func:`guard_store` makes the
store MLflow uses for a URI retry such calls with backoff for a bounded time, and then
raise one :class:`~mlflow_pairs.errors.TrackingConnectionError` naming the store.

Each store call is one transaction that the database rolled back when it failed, so
calling it again is safe. Calls made from inside a guarded call (a store method calling
another) are not retried on their own: the outer call is retried whole.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from mlflow_pairs.errors import TrackingConnectionError

__all__ = [
    "STORE_RETRY_ENV",
    "STORE_RETRY_SECONDS",
    "guard_store",
    "is_transient",
    "store_retry_seconds",
]

logger = logging.getLogger(__name__)

#: Seconds a failing call to a database store is retried before it fails (the default),
#: and the environment variable that changes it (0: no retry).
STORE_RETRY_SECONDS = 60.0
STORE_RETRY_ENV = "MLFLOW_PAIRS_STORE_RETRY_SECONDS"
_FIRST_DELAY = 0.5
_MAX_DELAY = 8.0
_GUARDED = "_mlflow_pairs_retry_guard"
#: MLflow logs a traceback for every failed database call; inside a guarded call the
#: retry says what happened instead.
_MLFLOW_DB_LOGGER = "mlflow.store.db.utils"

_state = threading.local()


def store_retry_seconds() -> float:
    """``$MLFLOW_PAIRS_STORE_RETRY_SECONDS``, else :data:`STORE_RETRY_SECONDS`."""
    given = os.environ.get(STORE_RETRY_ENV, "").strip()
    if not given:
        return STORE_RETRY_SECONDS
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        from mlflow_pairs.errors import ConfigError

        raise ConfigError(f"{STORE_RETRY_ENV} must be a number of seconds >= 0, got {given!r}")
    return seconds


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database could not be reached or lost
    the connection: worth trying again."""
    import sqlalchemy

    if "disk is full" in str(exc) or "No space left" in str(exc):
        return False  # waiting does not free a disk: mlflow_pairs.tracking._space says so
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if getattr(seen, "error_code", None) == "TEMPORARILY_UNAVAILABLE":
            return True
        if isinstance(seen, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        # The cause only: an error raised while handling another is not that error.
        seen = seen.__cause__
    return False


def _reason(exc: BaseException) -> str:
    import sqlalchemy

    from mlflow_pairs.db._engine import describe_db_error

    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, sqlalchemy.exc.SQLAlchemyError):
        seen = seen.__cause__ or seen.__context__
    return describe_db_error(seen if seen is not None else exc)


def _retrying(
    call: Callable[..., Any], name: str, store_name: str, seconds: Callable[[], float]
) -> Callable[..., Any]:
    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_state, "depth", 0):
            return call(*args, **kwargs)
        budget = seconds()
        started = time.monotonic()
        delay = _FIRST_DELAY
        attempt = 0
        _state.depth = 1
        try:
            while True:
                attempt += 1
                try:
                    result = call(*args, **kwargs)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    waited = time.monotonic() - started
                    if waited + delay > budget:
                        raise TrackingConnectionError(
                            f"lost MLflow tracking store {store_name}: {_reason(exc)} (gave up "
                            f"on {name} after {attempt} attempt{'s' if attempt > 1 else ''} "
                            f"in {waited:.1f} s; {STORE_RETRY_ENV}={budget:g})"
                        ) from None
                    if attempt == 1:
                        logger.warning(
                            "tracking store %s did not answer (%s); retrying %s for up to %g s",
                            store_name, _reason(exc), name, budget,
                        )  # fmt: skip
                    time.sleep(delay * random.uniform(0.8, 1.2))
                    delay = min(delay * 2, _MAX_DELAY)
                    continue
                if attempt > 1:
                    logger.warning(
                        "tracking store %s answers again (%s after %d attempts)",
                        store_name, name, attempt,
                    )  # fmt: skip
                return result
        finally:
            _state.depth = 0

    return wrapper


class _QuietWhileRetrying(logging.Filter):
    """Drops MLflow's per-failure database tracebacks inside a guarded call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_state, "depth", 0)


def guard_store(store: Any, store_name: str, seconds: Callable[[], float]) -> None:
    """Make every public method of ``store`` (an MLflow store instance) retry transient
    database failures for ``seconds()`` seconds, then raise a one-line
    :class:`TrackingConnectionError` naming ``store_name`` (the URI, password masked).
    Idempotent."""
    if getattr(store, _GUARDED, False):
        return
    for name, _ in inspect.getmembers(type(store), inspect.isfunction):
        if name.startswith("_"):
            continue
        setattr(store, name, _retrying(getattr(store, name), name, store_name, seconds))
    setattr(store, _GUARDED, True)
    mlflow_logger = logging.getLogger(_MLFLOW_DB_LOGGER)
    if not any(isinstance(f, _QuietWhileRetrying) for f in mlflow_logger.filters):
        mlflow_logger.addFilter(_QuietWhileRetrying())
