"""SQLAlchemy engines for the URIs users write, with bounded connection time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, make_url

from mlflow_pairs.errors import DatabaseError
from mlflow_pairs.secrets import mask_uri, redact

__all__ = [
    "absolute_sqlite_uri",
    "backend_name",
    "check_connection",
    "describe_db_error",
    "describe_location",
    "make_engine",
    "parse_url",
    "using_engine",
]


def parse_url(uri: str) -> URL:
    """Parse a database URI; both ``postgresql://`` and ``postgresql+psycopg2://`` work.

    A bare ``postgresql://`` is run by psycopg 3 under SQLAlchemy 2.1 (and psycopg2 under
    2.0); both drivers are dependencies of this package, so either mapping works.
    """
    try:
        return make_url(uri)
    except Exception:
        raise DatabaseError(f"not a database URI: {mask_uri(uri)}") from None


def backend_name(uri: str) -> str:
    """``postgresql``, ``sqlite``, ``mysql``... for a database URI."""
    return parse_url(uri).get_backend_name()


def absolute_sqlite_uri(uri: str, *, create: bool = False) -> str:
    """Make a relative SQLite path absolute (against the working directory), so the store
    is the same whichever process opens it.

    A missing folder is created only with ``create`` (``db create``) or for the embedded
    default (``./mlruns``); otherwise it is a :class:`DatabaseError` naming it, so a
    mistyped path is reported, not created.
    """
    from mlflow_pairs._uris import EMBEDDED_STORE_FOLDER

    url = parse_url(uri)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return uri
    path = Path(url.database).expanduser().resolve()
    folder = path.parent
    if not folder.is_dir():
        if not (create or folder == Path.cwd().resolve() / EMBEDDED_STORE_FOLDER):
            raise DatabaseError(
                f"the folder {folder} of SQLite database {path.name} does not exist "
                "(create it, or correct the path)"
            )
        folder.mkdir(parents=True, exist_ok=True)
    return url.set(database=str(path)).render_as_string(hide_password=False)


def make_engine(uri: str, *, timeout: float = 5.0, autocommit: bool = False) -> sqlalchemy.Engine:
    """An engine whose connection attempts give up after ``timeout`` seconds."""
    url = parse_url(uri)
    kwargs: dict[str, Any] = {"poolclass": sqlalchemy.pool.NullPool}
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": max(1, round(timeout))}
    elif url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": timeout}
    if autocommit:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    try:
        return sqlalchemy.create_engine(url, **kwargs)
    except Exception as exc:
        raise DatabaseError(f"cannot use {mask_uri(uri)}: {describe_db_error(exc)}") from None


def describe_db_error(exc: BaseException) -> str:
    """The useful first line of a driver error, with secrets redacted."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    first = text[0] if text else type(original).__name__
    return redact(first.strip())


@contextlib.contextmanager
def using_engine(
    uri: str, what: str, *, timeout: float = 5.0, autocommit: bool = False
) -> Iterator[sqlalchemy.Engine]:
    """An engine for ``uri``, disposed afterwards; a database error inside becomes
    :class:`DatabaseError` reading ``"{what} {masked uri}: {reason}"``."""
    engine = make_engine(uri, timeout=timeout, autocommit=autocommit)
    try:
        yield engine
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise DatabaseError(f"{what} {mask_uri(uri)}: {describe_db_error(exc)}") from None
    finally:
        engine.dispose()


def describe_location(uri: str) -> str:
    """Where a database URI points, without its password: ``host db.example, port 5432,
    database mlflow_db, user mlflow`` (defaults filled in as the driver would)."""
    url = parse_url(uri)
    if url.get_backend_name() == "sqlite":
        return f"file {url.database or ':memory:'}"
    default_port = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
    parts = [
        f"host {url.host or 'localhost'}",
        f"port {url.port or default_port.get(url.get_backend_name(), '?')}",
        f"database {url.database or '(default)'}",
        f"user {url.username or '(default)'}",
    ]
    return ", ".join(parts)


def check_connection(uri: str, what: str, *, timeout: float = 5.0) -> None:
    """Connect to ``uri`` once (within ``timeout`` seconds) and run ``SELECT 1``.

    Raises :class:`DatabaseError` reading ``"{what} ({location}): {reason}"``: a wrong
    password, a closed port, an unknown host or a missing database is said at once, with
    the host, port, database and user but never the password. SQLite files are not
    checked (the store creates them).
    """
    url = parse_url(uri)
    if url.get_backend_name() == "sqlite":
        return
    engine = make_engine(uri, timeout=timeout)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = describe_db_error(exc)
        if "does not exist" in reason and "database" in reason:
            reason += " (create it with `mlflow-pairs db create`)"
        raise DatabaseError(f"{what} ({describe_location(uri)}): {reason}") from None
    finally:
        engine.dispose()
