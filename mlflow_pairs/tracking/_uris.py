"""Normalising the tracking, registry and artifact URIs from the configuration."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from mlflow_pairs.db._engine import absolute_sqlite_uri

__all__ = ["absolute_artifact_root", "is_database_uri", "is_http_uri", "normalise_store_uri"]

_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def is_http_uri(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def is_database_uri(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return scheme.split("+", 1)[0] in _DATABASE_SCHEMES


def normalise_store_uri(uri: str) -> str:
    """Relative SQLite paths become absolute (their folder is created); others unchanged."""
    if is_database_uri(uri):
        return absolute_sqlite_uri(uri)
    return uri


def absolute_artifact_root(root: str) -> str:
    """``file:./mlruns`` or ``./mlruns`` becomes ``file:///abs/mlruns``; remote roots stay."""
    parsed = urlparse(root)
    if parsed.scheme in ("", "file"):
        path = root[len("file:") :] if parsed.scheme == "file" else root
        if path.startswith("//"):
            path = urlparse(root).path
        return Path(path).expanduser().resolve().as_uri()
    return root
