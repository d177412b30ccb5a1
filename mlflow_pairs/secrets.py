"""Keeping secrets out of messages, logs, MLflow params and tags.

Two mechanisms work together:

* :func:`mask_uri` hides the password of any URI (``postgresql://u:pw@h/db`` becomes
  ``postgresql://u:***@h/db``);
* :func:`register_secret` remembers secret values (for example the value of
  ``MLFLOW_DB_PASSWORD`` when the configuration expands it) and :func:`redact` replaces
  them wherever they appear, also inside text that is not a URI.

:func:`install_log_redaction` applies both to every log record of the process.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = [
    "MASK",
    "install_log_redaction",
    "is_secret_name",
    "mask_uri",
    "redact",
    "register_secret",
]

MASK = "***"

_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|CREDENTIAL", re.IGNORECASE)
# scheme://user:password@host  -> the password is everything between the first ':' after
# the scheme's '//' and the last '@' before the host.
_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?=@)")

_lock = threading.Lock()
_secrets: set[str] = set()


def is_secret_name(name: str) -> bool:
    """Whether an environment variable or config key of this name holds a secret."""
    return bool(_SECRET_NAME.search(name))


def register_secret(value: str | None) -> None:
    """Remember ``value`` so that :func:`redact` hides it from now on.

    Values shorter than four characters are not registered: hiding them would mangle
    ordinary text and they are not meaningful secrets anyway.
    """
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def mask_uri(uri: str) -> str:
    """Return ``uri`` with the password of its user-info part replaced by ``***``."""
    return _URI_PASSWORD.sub(lambda m: m.group("head") + MASK, uri)


def redact(text: str) -> str:
    """Mask URI passwords and every registered secret value in ``text``."""
    text = mask_uri(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


_installed = False


def install_log_redaction() -> None:
    """Redact every log record the process creates, whichever logger or handler it reaches.

    Works at record creation (a log-record factory), so it also covers loggers such as
    MLflow's that bring their own handlers. Idempotent.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)
