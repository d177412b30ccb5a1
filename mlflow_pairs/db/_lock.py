"""One lock for every schema change this package makes to a database.

A file lock serialises processes on this machine; on PostgreSQL an advisory lock, held on
its own connection, serialises processes on any machine. MLflow's own first-time table
creation takes no lock in its model-registry store, so two processes opening a fresh
database at once can collide; this package creates MLflow's tables under this lock first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from mlflow_pairs.db._engine import make_engine

__all__ = ["migration_lock"]

# pg_advisory_lock key: "mlpairs" in ASCII, as a bigint.
_LOCK_KEY = int.from_bytes(b"mlpairs", "big")


@contextlib.contextmanager
def _file_lock(uri: str) -> Iterator[None]:
    if os.name == "nt":  # pragma: no cover - fcntl is POSIX only
        yield
        return
    import fcntl

    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"mlflow-pairs-migrate-{digest}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def migration_lock(uri: str, *, timeout: float = 10.0) -> Iterator[None]:
    """Hold the schema-change lock of the database of ``uri`` (not re-entrant)."""
    with _file_lock(uri):
        if sa.engine.make_url(uri).get_backend_name() != "postgresql":
            yield
            return
        engine = make_engine(uri, timeout=timeout)
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                    connection.commit()
        finally:
            engine.dispose()
