"""Keeping secrets out of messages, logs, MLflow params and tags.

Two mechanisms work together:

* :func:`register_secret` remembers secret values (for example the value of
  ``MLFLOW_DB_PASSWORD`` when the configuration expands it), as typed and as they are
  written inside a URI (percent-encoded), and :func:`redact` replaces them wherever they
  appear, also inside text that is not a URI;
* :func:`mask_uri` hides the password of any URI (``postgresql://u:pw@h/db`` becomes
  ``postgresql://u:***@h/db``), also one that is not registered; the password runs to the
  last ``@`` of the URI, so an unencoded ``@``, ``:`` or ``/`` in it is hidden too.

Registered secrets are replaced first: a password with a space, which ends a URI pattern,
is still hidden whole.

:func:`install_log_redaction` applies both to every log record of the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus, unquote, urlsplit

__all__ = [
    "MASK",
    "install_log_redaction",
    "is_secret_name",
    "mask_uri",
    "redact",
    "register_secret",
    "register_uri_password",
]

MASK = "***"

_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|CREDENTIAL", re.IGNORECASE)
# scheme://user:password@host  -> the password is everything between the first ':' after
# the scheme's '//' and the LAST '@' of the URI (a run without whitespace): a password
# that is not percent-encoded may hold '@', ':', '/', '?' or '#' itself, and stopping at
# its first '@' would show the rest. A space ends the URI; registered secrets cover that.
_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>\S*)(?=@)")

#: Secrets shorter than this are not registered (in any form).
_MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def is_secret_name(name: str) -> bool:
    """Whether an environment variable or config key of this name holds a secret."""
    return bool(_SECRET_NAME.search(name))


def _secret_forms(value: str) -> set[str]:
    """``value`` as typed and the forms it takes in a URI, a query string or quoted text.

    Percent-encoded (``quote(value, safe="")``, ``quote(value)``, ``quote_plus(value)``),
    for a value taken from a URI decoded (``unquote(value)``), and each of these as
    ``repr()`` and JSON write it between quotes: a password holding ``\\`` or ``"`` (common
    on Windows) is written with escapes there, as in ``{value!r}`` of an error message.
    """
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), unquote(value)}
    escaped = set()
    for form in forms:
        escaped.add(repr(form)[1:-1])
        escaped.add(json.dumps(form)[1:-1])
        escaped.add(json.dumps(form, ensure_ascii=False)[1:-1])
    return forms | escaped


def register_secret(value: str | None) -> None:
    """Remember ``value``, in every form of :func:`_secret_forms`, so that :func:`redact`
    hides it from now on.

    Values shorter than four characters are not registered, in any form: hiding them would
    mangle ordinary text and they are not meaningful secrets anyway (a URI's password is
    still masked by :func:`mask_uri`, whatever its length).
    """
    if value and len(value) >= _MIN_SECRET_LENGTH:
        forms = {form for form in _secret_forms(value) if len(form) >= _MIN_SECRET_LENGTH}
        with _lock:
            _secrets.update(forms)


def register_uri_password(uri: str | None) -> None:
    """Register the password of ``uri`` as written there, and decoded.

    Also for a URI written with its password not (or not wholly) percent-encoded: the part
    up to the last ``@`` and, when the password holds a space, what :func:`urlsplit` finds.
    """
    if not uri:
        return
    for match in _URI_PASSWORD.finditer(uri):
        register_secret(match.group("pw"))
    with contextlib.suppress(ValueError):  # an invalid port, an unclosed "[" of IPv6
        register_secret(urlsplit(uri.strip()).password)


def _mask_uri_passwords(text: str) -> str:
    return _URI_PASSWORD.sub(lambda m: m.group("head") + MASK, text)


def _replace_registered(text: str) -> str:
    with _lock:
        # Longest first: a secret that contains another is replaced whole.
        secrets = sorted(_secrets, key=lambda secret: (-len(secret), secret))
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_uri(uri: str) -> str:
    """Return ``uri`` with the password of its user-info part replaced by ``***``.

    The password runs from the first ``:`` after the user name to the last ``@``, so one
    written with an unencoded ``@``, ``:`` or ``/`` is hidden whole; registered secrets are
    replaced first (as in :func:`redact`), which also covers a password holding a space.
    """
    return redact(uri)


def redact(text: str) -> str:
    """Replace every registered secret, then every URI password, in ``text`` by ``***``.

    Registered secrets go first: masking the URIs first would cut a password holding an
    ``@`` or a space in two, and the parts would no longer match the registered value.
    """
    return _mask_uri_passwords(_replace_registered(text))


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
