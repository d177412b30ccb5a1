"""What the ``garch_gru`` pyfunc wrapper needs from MLflow's scoring path, in one place.

- :func:`refusal` and :func:`internal_error`: the exceptions the wrapper raises, so that the
  scoring server answers bad input with HTTP 400 (or 413) and one line, and a fault of the
  model's own code with HTTP 500 (MLflow's server turns any other exception into a 400).
- :func:`watch_dropped_params` and :func:`dropped_params`: the params MLflow dropped
  before calling the model. ``PyFuncModel.predict`` removes params that the signature does
  not declare, with only a logged warning, so the model cannot see a misspelt
  ``entryz``. That warning is the one trace of them; a filter on MLflow's logger records
  it for the prediction under way.

An MLflow upgrade that changes this behaviour breaks this module only; the serving tests
(an unknown param is HTTP 400, one line) say so.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
from functools import cache
from typing import Any

__all__ = ["dropped_params", "internal_error", "refusal", "watch_dropped_params"]

#: The logger of ``mlflow.models.utils._enforce_params_schema``, and its warning.
_PARAMS_LOGGER = "mlflow.models.utils"
_DROPPED = re.compile(r"Unrecognized params (\[.*?\]) are ignored")

_seen = threading.local()
_install_lock = threading.Lock()


@cache
def _one_line_class() -> type[Exception]:
    from mlflow.exceptions import MlflowException

    class OneLineError(MlflowException):
        """An ``MlflowException`` answered with HTTP ``status`` whose message stays the one
        line it was made with: MLflow's scoring server would otherwise prefix the whole
        request's data to it."""

        def __init__(self, message: str, error_code: int, status: int) -> None:
            super().__init__(message, error_code=error_code)
            self.status = status

        @property
        def message(self) -> str:
            return self._message

        @message.setter
        def message(self, value: str) -> None:
            if not hasattr(self, "_message"):
                self._message = value

        def get_http_status_code(self) -> int:
            return self.status

    return OneLineError


def refusal(message: str, status: int = 400) -> Exception:
    """An ``MlflowException`` for bad input: HTTP ``status`` with ``message`` alone
    (``INVALID_PARAMETER_VALUE`` for 400, ``BAD_REQUEST`` for another 4xx such as 413)."""
    from mlflow.protos.databricks_pb2 import BAD_REQUEST, INVALID_PARAMETER_VALUE

    code = INVALID_PARAMETER_VALUE if status == 400 else BAD_REQUEST
    return _one_line_class()(message, code, status)


def internal_error(exc: BaseException) -> Exception:
    """An ``MlflowException`` (``INTERNAL_ERROR``, HTTP 500) for a fault of the model's own
    code: one line naming the exception; the traceback goes to the server's log."""
    from mlflow.protos.databricks_pb2 import INTERNAL_ERROR

    first = str(exc).strip().splitlines()
    detail = f": {first[0]}" if first else ""
    message = (
        f"garch_gru model failed with {type(exc).__name__}{detail} (an internal error, not "
        "the request's fault; the server log has the traceback)"
    )
    return _one_line_class()(message, INTERNAL_ERROR, 500)


class _DroppedParamsFilter(logging.Filter):
    """Records the names in MLflow's "Unrecognized params" warning, with the prediction
    context of the call that logged it, for this thread."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            match = _DROPPED.match(record.getMessage())
            if match:
                from mlflow.pyfunc.context import get_prediction_context

                try:
                    names = sorted(str(n) for n in ast.literal_eval(match.group(1)))
                except (ValueError, SyntaxError):
                    names = [match.group(1)]
                _seen.value = (get_prediction_context(), names)
        # Keep the logger's output as it was configured before the filter was installed.
        return record.levelno >= self.threshold


def watch_dropped_params() -> None:
    """Install the filter on MLflow's params logger (once per process). Where that logger
    does not pass warnings, it is made to, and the filter keeps its output as it was."""
    logger = logging.getLogger(_PARAMS_LOGGER)
    with _install_lock:
        if any(isinstance(f, _DroppedParamsFilter) for f in logger.filters):
            return
        threshold = logger.getEffectiveLevel()
        if threshold > logging.WARNING:
            logger.setLevel(logging.WARNING)
        logger.addFilter(_DroppedParamsFilter(threshold))


def dropped_params() -> list[str]:
    """The params MLflow dropped for the prediction under way (empty when none); reading
    them clears them."""
    from mlflow.pyfunc.context import get_prediction_context

    seen: tuple[Any, list[str]] | None = getattr(_seen, "value", None)
    _seen.value = None
    if seen is None:
        return []
    context, names = seen
    # A warning of an earlier call whose params were refused before the model ran (same
    # thread) belongs to another prediction context: ignore it.
    current = get_prediction_context()
    return names if current is not None and context is current else []
